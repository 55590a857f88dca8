"""The token vault: access tokens encrypted at rest (AES-GCM, key ids, rotation) and their storage."""
