"""Tenants and who acts for them: tenants and numbers, users and passwords, sessions, API keys, the tenant's
configuration as the pipeline reads it, and the replay of held events once a number has an owner."""
