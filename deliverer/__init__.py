"""The webhook deliverer: tenants' own endpoints hear of messages, statuses, conversations, contacts, templates and
campaigns, signed, in order per conversation, retried and logged. Its own process and HTTP clients: a slow or dead
endpoint never touches Meta's sends (the dispatcher) nor another endpoint's deliveries."""
