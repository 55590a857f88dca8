"""The console's live feed: ``GET /v1/live`` (Server-Sent Events) fed by one Kafka consumer per web process."""
