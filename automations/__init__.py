"""Automation rules: what a tenant's rules look like (``rules``) and how they are evaluated (``engine``)."""
