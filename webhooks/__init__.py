"""Tenants' outbound webhooks: the event catalogue, the mapping of Aerostic's topics to events, Standard Webhooks
signing, the SSRF policy for tenants' URLs, and the endpoints and delivery log in PostgreSQL."""
