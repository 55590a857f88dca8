"""The agents' unit tests use the dispatcher's real redis-server fixtures."""

from tests.unit.dispatcher.conftest import redis_client, redis_url, uid

__all__ = ["redis_client", "redis_url", "uid"]
