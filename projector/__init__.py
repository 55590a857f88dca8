"""The projector process: routed events, send results, conversation events and signups → PostgreSQL,
one transaction per batch, offsets committed after the write."""
