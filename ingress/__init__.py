"""The webhook ingress: Meta's signed webhooks, verified and appended to ``wa.webhooks.raw`` (the hot path)."""
