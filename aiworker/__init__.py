"""The AI worker process: ``ai.requests`` → the tenant's provider (``ai/``) → ``ai.decisions``."""
