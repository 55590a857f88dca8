"""Contacts of a tenant: phone numbers (E.164), segments (audiences), opt-out, CSV import."""
