"""The campaign pipeline's contracts: deterministic keys, and the commands topic's two kinds."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.campaigns import CAMPAIGN_COMMAND, CampaignHeld, CampaignJob, idempotency_key, message_id, parse_key


def test_keys_are_deterministic_and_parse_back() -> None:
    key = idempotency_key("c1", "919876543210")
    assert key == idempotency_key("c1", "919876543210") and key != idempotency_key("c2", "919876543210")
    assert parse_key(key) == ("c1", "919876543210")
    assert message_id("c1", "919876543210") == message_id("c1", "919876543210")
    assert message_id("c1", "919876543210") != message_id("c1", "919876543211")
    assert parse_key("t1:order-42") is None and parse_key(None) is None and parse_key("campaign:c1") is None


def test_commands_topic_decodes_jobs_and_holds() -> None:
    job = CampaignJob(event_id="e", campaign_id="c", tenant_id="t", action="requeue", reason="portfolio_budget")
    held = CampaignHeld(event_id="h", campaign_id="c", tenant_id="t", contact="91", reason="portfolio_budget",
                        at=datetime.now(UTC))
    assert CAMPAIGN_COMMAND.validate_json(job.encode()) == job
    assert CAMPAIGN_COMMAND.validate_json(held.encode()) == held
