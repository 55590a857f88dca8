"""The Meta simulator: Graph API, webhooks back, Embedded Signup's dialog and simulated customers. It imports
nothing of Aerostic's, so it can catch Aerostic's bugs."""
