"""The dispatcher process, the only caller of Meta: the outbound lanes under Meta's limits, at most one call per
idempotency key, errors classified by Meta's code, and Embedded Signup's token exchange."""
