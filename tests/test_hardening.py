"""Misuse the API must hold up against: floods (429 with Retry-After, per user, in Redis where
configured), oversized bodies (413), oversized pages, and a schema that declares every error."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
import redis
import yaml
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.test import override_settings

from compensation.http import ResilientAnonRateThrottle, ResilientUserRateThrottle, window_count

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_per_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """THROTTLE_USER_RATE=3/min for this test (DRF reads the rates when the class is defined)."""
    monkeypatch.setattr(ResilientUserRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "60/min"})


def _throttle_keys() -> list[bytes]:
    """The per-user throttle's keys in Redis (this process's: the cache was emptied before the test)."""
    return redis.Redis.from_url(settings.REDIS_URL).keys(f"{caches['default'].key_prefix}:*throttle_user_*")


def _flood(client: Any, path: str, times: int) -> list[Any]:
    return [client.get(path) for _ in range(times)]


def test_a_user_over_the_rate_gets_429_with_retry_after(client_for: Any, three_per_minute: None) -> None:
    analyst = client_for("analyst")

    responses = _flood(analyst, "/api/v1/reports/summary/", 4)

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    throttled = responses[-1]
    assert throttled["Content-Type"] == "application/json"
    assert throttled.json()["code"] == "throttled"
    assert 1 <= int(throttled["Retry-After"]) <= 60


def test_the_limit_is_per_user(client_for: Any, three_per_minute: None) -> None:
    first, second = client_for("manager", "manager-1"), client_for("manager", "manager-2")

    assert _flood(first, "/api/v1/me/", 4)[-1].status_code == 429

    assert second.get("/api/v1/me/").status_code == 200


def test_the_count_is_kept_in_redis_where_configured(
    client_for: Any, three_per_minute: None, needs_redis: None
) -> None:
    assert isinstance(caches["default"], RedisCache)
    client_for("agent").get("/api/v1/me/")

    assert _throttle_keys(), "the throttle's count is not in Redis"


def test_a_window_counts_until_it_closes_then_starts_again() -> None:
    backend = LocMemCache("throttle-test", {})

    assert window_count(backend, "k", duration=60, now=1000.0) == (1, 60.0)
    assert window_count(backend, "k", duration=60, now=1030.0) == (2, 30.0)
    assert window_count(backend, "k", duration=60, now=1059.5) == (3, 0.5)
    assert window_count(backend, "k", duration=60, now=1060.0) == (1, 60.0)
    assert window_count(backend, "other", duration=60, now=1060.0) == (1, 60.0)


@pytest.fixture
def redis_sends(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What redis-py writes to its sockets, one entry per write: a round trip each."""
    from redis.connection import AbstractConnection

    sent: list[bytes] = []
    original = AbstractConnection.send_packed_command

    def send(self: Any, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", send)
    return sent


def test_on_redis_a_request_costs_the_throttle_one_round_trip(
    client_for: Any, three_per_minute: None, needs_redis: None, redis_sends: list[bytes]
) -> None:
    agent = client_for("agent")
    agent.get("/api/v1/me/")  # the pool's connection is made (and introduced) here
    redis_sends.clear()

    assert agent.get("/api/v1/me/").status_code == 200

    assert len(redis_sends) == 1, redis_sends
    client = redis.Redis.from_url(settings.REDIS_URL)
    [key] = _throttle_keys()
    assert int(client.get(key)) == 2
    assert 0 < client.pttl(key) <= 60_000


def test_on_redis_the_limit_lifts_when_the_window_closes(
    client_for: Any, three_per_minute: None, needs_redis: None
) -> None:
    agent = client_for("agent")
    responses = _flood(agent, "/api/v1/me/", 4)
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    client = redis.Redis.from_url(settings.REDIS_URL)
    [key] = _throttle_keys()
    assert int(responses[-1]["Retry-After"]) == math.ceil(client.pttl(key) / 1000)

    client.pexpire(key, 1)  # the minute is up
    deadline = time.monotonic() + 5
    while client.exists(key) and time.monotonic() < deadline:
        time.sleep(0.01)

    assert agent.get("/api/v1/me/").status_code == 200


@override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})
def test_retry_after_says_when_the_window_closes(
    client_for: Any, three_per_minute: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.clear()  # this LocMem (where Redis is configured, the autouse fixture emptied Redis, not it)
    clock = [1000.0]
    monkeypatch.setattr(ResilientUserRateThrottle, "timer", lambda self: clock[0])
    agent = client_for("agent")
    assert [r.status_code for r in _flood(agent, "/api/v1/me/", 3)] == [200, 200, 200]

    clock[0] = 1020.0
    assert agent.get("/api/v1/me/")["Retry-After"] == "40"
    clock[0] = 1045.5
    assert agent.get("/api/v1/me/")["Retry-After"] == "15"  # refused requests do not push the window back

    clock[0] = 1060.0
    assert [r.status_code for r in _flood(agent, "/api/v1/me/", 4)] == [200, 200, 200, 429]


@pytest.fixture
def two_per_minute_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """THROTTLE_ANON_RATE=2/min for this test."""
    monkeypatch.setattr(ResilientAnonRateThrottle, "THROTTLE_RATES", {"user": "1000/min", "anon": "2/min"})


@pytest.mark.usefixtures("two_per_minute_per_address")
def test_feedback_links_are_limited_per_address(api_client: Any) -> None:
    url = "/api/v1/feedback/not-a-real-token/"

    answers = [api_client.post(url, {"satisfaction": 5}, format="json", REMOTE_ADDR="10.0.0.1") for _ in range(3)]

    assert [r.status_code for r in answers] == [404, 404, 429]
    assert answers[-1].json()["code"] == "throttled"
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60
    other = api_client.post(url, {"satisfaction": 5}, format="json", REMOTE_ADDR="10.0.0.2")
    assert other.status_code == 404


@pytest.mark.usefixtures("two_per_minute_per_address")
def test_a_spoofed_forwarded_for_header_gets_no_fresh_bucket(api_client: Any) -> None:
    """It did: with DRF's NUM_PROXIES unset, any X-Forwarded-For a client wrote was its address."""
    url = "/api/v1/feedback/not-a-real-token/"

    answers = [
        api_client.post(url, {"satisfaction": 5}, format="json", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=spoofed)
        for spoofed in ("203.0.113.1", "203.0.113.2", "203.0.113.3")
    ]

    assert [r.status_code for r in answers] == [404, 404, 429]


def _rest_framework(**changes: Any) -> dict[str, Any]:
    return {**settings.REST_FRAMEWORK, **changes}


@pytest.mark.usefixtures("two_per_minute_per_address")
def test_behind_one_proxy_the_last_forwarded_for_entry_is_the_client(api_client: Any) -> None:
    url = "/api/v1/feedback/not-a-real-token/"

    def post(forwarded_for: str) -> int:
        return api_client.post(
            url, {"satisfaction": 5}, format="json", REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR=forwarded_for
        ).status_code

    with override_settings(REST_FRAMEWORK=_rest_framework(NUM_PROXIES=1)):
        # What the client wrote comes first; the proxy appends the address it saw.
        assert [post(f"198.51.100.{n}, 192.0.2.7") for n in range(3)] == [404, 404, 429]
        assert post("198.51.100.1, 192.0.2.8") == 404  # another client behind the same proxy


@pytest.mark.usefixtures("two_per_minute_per_address")
def test_forwarded_for_entries_that_are_no_address_share_the_peers_bucket(api_client: Any) -> None:
    """Junk in the trusted entry (a client reaching the process past the proxy) is not a fresh bucket each time."""
    url = "/api/v1/feedback/not-a-real-token/"
    with override_settings(REST_FRAMEWORK=_rest_framework(NUM_PROXIES=1)):
        answers = [
            api_client.post(
                url, {"satisfaction": 5}, format="json", REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR=f"junk{n}"
            ).status_code
            for n in range(3)
        ]
    assert answers == [404, 404, 429]


@pytest.mark.parametrize(
    ("num_proxies", "forwarded_for", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),
        (0, None, "10.0.0.1"),
        (1, "203.0.113.9, 192.0.2.7", "192.0.2.7"),
        (2, "203.0.113.9, 192.0.2.7, 192.0.2.8", "192.0.2.7"),
        (3, "192.0.2.7", "192.0.2.7"),  # fewer entries than proxies: the leftmost
        (1, "192.0.2.7, not-an-address", "10.0.0.1"),  # not an address: the peer
        (1, None, "10.0.0.1"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_the_lockout_uses_is_the_rate_limits(
    rf: Any, num_proxies: int, forwarded_for: str | None, expected: str
) -> None:
    from rest_framework.throttling import BaseThrottle

    from compensation.http import client_address

    headers = {} if forwarded_for is None else {"HTTP_X_FORWARDED_FOR": forwarded_for}
    request = rf.post("/admin/login/", REMOTE_ADDR="10.0.0.1", **headers)

    with override_settings(REST_FRAMEWORK=_rest_framework(NUM_PROXIES=num_proxies)):
        assert client_address(request) == expected
        if "not-an-address" not in (forwarded_for or ""):
            assert BaseThrottle().get_ident(request) == expected


def test_a_body_over_the_limit_is_413_and_writes_nothing(client_for: Any) -> None:
    from compensation.models import Customer

    agent = client_for("agent")
    body = json.dumps({"customer": {"external_id": "C-1", "name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}})

    response = agent.post("/api/v1/offer-sets/", data=body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {
        "detail": f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
        "code": "request_too_large",
    }
    assert not Customer.objects.exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_the_limit_follows_the_setting(client_for: Any) -> None:
    body = json.dumps({"customer": {"external_id": "C-1", "name": "y" * 4096}})

    response = client_for("manager").post("/api/v1/offer-sets/", data=body, content_type="application/json")

    assert response.status_code == 413


@pytest.mark.parametrize(("asked", "served"), [("500", 100), ("100", 100), ("0", 25), ("-3", 25), ("many", 25)])
def test_a_page_never_holds_more_than_100(client_for: Any, asked: str, served: int) -> None:
    from compensation.pagination import PageNumberPagination

    paginator = PageNumberPagination()
    request = type("R", (), {"query_params": {"page_size": asked}})()

    assert paginator.get_page_size(request) == served


def _schema(client: Any) -> dict:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_declares_every_error_each_operation_can_answer(api_client: Any) -> None:
    paths = _schema(api_client)["paths"]
    operations = [(path, method, op) for path, ops in paths.items() for method, op in ops.items()]
    assert len(operations) >= 18

    for path, method, operation in operations:
        codes = set(operation["responses"])
        where = f"{method.upper()} {path}"
        assert "429" in codes, where
        if "feedback" not in path:
            assert "401" in codes, where
        if method == "post":
            assert {"400", "413", "415"} <= codes, where
        if "{" in path:
            assert "404" in codes, where
        if path.startswith("/api/v1/") and path != "/api/v1/me/" and "feedback" not in path:
            assert "403" in codes, where


def test_the_declared_error_body_is_the_contracts_shape(api_client: Any) -> None:
    schema = _schema(api_client)
    error = schema["components"]["schemas"]["Error"]

    assert set(error["properties"]) == {"detail", "code"}
    unauthorized = schema["paths"]["/api/v1/reports/summary/"]["get"]["responses"]["401"]
    assert unauthorized["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_the_schema_types_the_parameters_as_the_api_reads_them(api_client: Any) -> None:
    """The key is 1 to 255 characters (longer is a 400); ``overdue`` is true or false, not any string."""
    paths = _schema(api_client)["paths"]

    def parameter(path: str, method: str, name: str) -> dict:
        (found,) = [p for p in paths[path][method]["parameters"] if p["name"] == name]
        return found["schema"]

    for path in ("/api/v1/offer-sets/", "/api/v1/offer-sets/{offer_set_id}/outcome/"):
        assert parameter(path, "post", "Idempotency-Key") == {"type": "string", "minLength": 1, "maxLength": 255}
    assert parameter("/api/v1/escalations/", "get", "overdue") == {"type": "boolean"}


@pytest.mark.parametrize(
    ("path", "offered"),
    [("/api/v1/reports/agents/", "api, json"), ("/api/v1/outcomes/", "api, csv, json")],
)
def test_a_format_the_endpoint_does_not_offer_is_a_400_naming_those_it_does(
    client_for: Any, path: str, offered: str
) -> None:
    manager = client_for("manager")

    response = manager.get(path, {"format": "xml"})

    assert response.status_code == 400
    assert response.json() == {"format": [f"'xml' is not a format this endpoint offers ({offered})."]}
    assert manager.get(path, {"format": "json"}).status_code == 200
