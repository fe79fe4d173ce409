"""Django's Redis cache, with one redis-py client per server instead of one per operation.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` around
its connection pool for every cache operation, and building one (it copies
some two hundred response callbacks) cost about as much processor time as
the round trip it was for: the policy revision read of every offer-set
request and the throttle of every request paid it. The client is
thread-safe (it takes a connection from the pool per command), so one per
server is kept and reused; pools, options and behaviour are Django's.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: str | None = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
