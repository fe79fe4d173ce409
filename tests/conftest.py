"""Shared fixtures. Services the suite needs are used for real; where one is
missing a test skips with the reason, except in CI (CI=true), where it fails."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from tests.clock import clock_shift_start, clock_start_at

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_configure(config: pytest.Config) -> None:
    clock_shift_start()
    _hypothesis_without_project_constants()


def _hypothesis_without_project_constants() -> None:
    """Keep Hypothesis from drawing values out of this project's own source.

    Hypothesis (6.1xx) mixes into its data the constants of every local module imported so far, so a
    derandomized test (the schema fuzzing) would draw other inputs whenever any module's strings change, or
    whichever modules an earlier test in the same process happened to import: a test whose result depends
    on unrelated code. Its pool of local constants is emptied; its own built-in constants stay.
    """
    from hypothesis.internal.conjecture import providers

    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()


def pytest_report_header(config: pytest.Config) -> str | None:
    moved = clock_start_at() is not None
    return (
        f"clock moved (tests/clock.py): the suite starts at {timezone.now():%Y-%m-%d %H:%M:%S} UTC" if moved else None
    )


def need(available: bool, what: str) -> None:
    """Skip (or, in CI, fail) when a service or tool the test needs is missing."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} (CI must have it)")
    pytest.skip(what)


def redis_available() -> bool:
    if not settings.REDIS_URL:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def needs_redis() -> None:
    need(settings.REDIS_URL is not None, "REDIS_URL is not set: skipping a test that needs a real Redis")
    need(redis_available(), f"Redis at {settings.REDIS_URL} does not answer")


CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def chromium_path() -> str:
    need(CHROMIUM is not None, "no chromium on PATH (apt-get install chromium): skipping the browser test")
    return CHROMIUM


def cache_clear() -> None:
    """Empty this process's cache. On Redis only the cache's keys (its KEY_PREFIX): the database also holds
    the Celery broker's queues of the worker tests. Each pytest-xdist process has a Redis database of its own
    (tests/settings.py), so no other process's keys are in it."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        backend.clear()
        return
    client = backend._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{backend.key_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True, scope="session")
def _demo_password_file_of_the_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``load_demo`` keeps its password in DEMO_PASSWORD_FILE: a test run's own, never the checkout's."""
    from django.test import override_settings

    with override_settings(DEMO_PASSWORD_FILE=tmp_path_factory.mktemp("demo") / "demo-admin-password"):
        yield


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    from policies.index import policy_index_clear

    # Revision numbers repeat after a test's rollback, so the process's index must go too.
    policy_index_clear()

    # A missing Redis is reported by the tests that need it, not here.
    with contextlib.suppress(Exception):
        cache_clear()


@pytest.fixture
def make_user(db):
    from compensation.services.users import user_token_issue

    def make(username: str, role: str):
        user, token, _ = user_token_issue(username=username, role=role)
        return user, token.key

    return make


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def client_for(make_user):
    """An API client authenticated with a token for a new user of the role."""
    from rest_framework.test import APIClient

    def make(role: str, username: str | None = None) -> APIClient:
        _, key = make_user(username or f"{role}-user", role)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


# --- API clients of one user per role, as the report and offer-set tests use them ----------


@pytest.fixture
def agent1(client_for: Any) -> Any:
    return client_for("agent", "agent-1")


@pytest.fixture
def agent2(client_for: Any) -> Any:
    return client_for("agent", "agent-2")


@pytest.fixture
def manager(client_for: Any) -> Any:
    return client_for("manager", "manager-1")


@pytest.fixture
def analyst(client_for: Any) -> Any:
    return client_for("analyst", "analyst-1")


DEMO_PACK = Path(settings.BASE_DIR) / "fixtures" / "demo_pack.yaml"


@pytest.fixture
def demo_pack(db: None) -> None:
    """The demo policy pack, imported as ``import_policies`` does."""
    call_command("import_policies", str(DEMO_PACK), stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def now() -> datetime:
    return timezone.now()


def postgres_needed(why: str = "") -> None:
    """For a test only PostgreSQL can run: skipped elsewhere, and failed in CI; ``why`` says what it proves."""
    from django.db import connection

    need(
        connection.vendor == "postgresql", "needs PostgreSQL (DATABASE_URL=postgres://…)" + (f": {why}" if why else "")
    )


@pytest.fixture
def need_postgres() -> None:
    postgres_needed()
