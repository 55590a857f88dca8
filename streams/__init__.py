"""The stream worker process: the router (raw webhooks → per-tenant topics, through the tenant directory)
and the conversation processor (the single writer of each conversation's state machine)."""
