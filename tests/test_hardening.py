"""Misuse the API must hold up against: floods (429 with Retry-After, per user, in Redis where
configured), oversized bodies (413), oversized pages, and a schema that declares every error."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

from compensation.http import ResilientUserRateThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_per_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """THROTTLE_USER_RATE=3/min for this test (DRF reads the rates when the class is defined)."""
    monkeypatch.setattr(ResilientUserRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "60/min"})
    cache.clear()


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
    import redis

    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    client_for("agent").get("/api/v1/me/")

    keys = redis.Redis.from_url(settings.REDIS_URL).keys("recovery:*throttle_user_*")
    assert keys, "the throttle's history is not in Redis"


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
