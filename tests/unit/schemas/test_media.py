"""Meta's media kinds, types and limits as ``schemas.media`` applies them."""

from __future__ import annotations

import uuid

import pytest

from schemas.media import MB, MediaRefused, check, inbound_media_id, is_media_id, kind_of, media_objects


@pytest.mark.parametrize(("mime", "kind"), [
    ("image/jpeg", "image"), ("image/png", "image"), ("image/webp", "sticker"), ("video/mp4", "video"),
    ("audio/ogg; codecs=opus", "audio"), ("application/pdf", "document"), ("Text/Plain", "document"),
    ("application/zip", None), ("image/gif", None), ("", None)])
def test_kind_of(mime: str, kind: str | None) -> None:
    assert kind_of(mime) == kind


def test_limits_per_kind() -> None:
    check("image", "image/jpeg", 5 * MB)
    with pytest.raises(MediaRefused, match="at most 5 MB") as refused:
        check("image", "image/jpeg", 5 * MB + 1)
    assert refused.value.too_large
    check("document", "application/pdf", 100 * MB)
    with pytest.raises(MediaRefused, match="at most 500 KB"):
        check("sticker", "image/webp", 500 * 1024 + 1)
    with pytest.raises(MediaRefused, match="must be one of") as wrong:
        check("image", "image/gif", 10)
    assert not wrong.value.too_large


def test_customers_documents_may_be_any_type_but_not_any_size() -> None:
    check("document", "application/zip", 10, inbound=True)
    with pytest.raises(MediaRefused):
        check("document", "application/zip", 10)
    with pytest.raises(MediaRefused):
        check("document", "application/zip", 100 * MB + 1, inbound=True)
    with pytest.raises(MediaRefused):
        check("image", "application/zip", 10, inbound=True)


def test_ids() -> None:
    assert inbound_media_id("t", "wamid.1") == inbound_media_id("t", "wamid.1") != inbound_media_id("u", "wamid.1")
    assert is_media_id(str(uuid.uuid4())) and is_media_id(inbound_media_id("t", "w"))
    assert not is_media_id("1003383421387256") and not is_media_id("../x")


def test_media_objects_of_a_message_and_of_a_templates_parameters() -> None:
    image = {"type": "image", "image": {"id": "x", "caption": "c"}}
    assert media_objects(image) == [(("image",), "image", {"id": "x", "caption": "c"})]
    template = {"type": "template", "template": {"name": "t", "components": [
        {"type": "header", "parameters": [{"type": "document", "document": {"id": "d"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Mark"}, {"type": "image", "image": {"link": "l"}}]}]}}
    assert media_objects(template) == [
        (("template", "components", 0, "parameters", 0, "document"), "document", {"id": "d"}),
        (("template", "components", 1, "parameters", 1, "image"), "image", {"link": "l"})]
    assert media_objects({"type": "text", "text": {"body": "hi"}}) == []
    assert media_objects({"type": "template", "template": {"components": "junk"}}) == []
