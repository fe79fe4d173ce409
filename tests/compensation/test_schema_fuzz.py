"""Schema-driven fuzzing: schemathesis generates requests from ``/api/schema/`` (valid and
invalid ones) for every operation, sends them through the WSGI application with a valid
token of each role, and checks each answer: never a 5xx, a status code the schema declares,
the declared content type, and a body that matches the declared schema.

At least 1,000 requests in all (counted; the last test checks the count).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 25
MINIMUM_REQUESTS = 1000
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
SENT: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


def _schema() -> Any:
    """The schema as the running application serves it (collection time: no database is needed)."""
    from recovery_project.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application)


schema = _schema()


@pytest.fixture
def connection_kept() -> Any:
    """Requests go straight to the WSGI app, so keep Django from closing the test's connection
    after each one (inside the test's transaction it looks obsolete), as Django's test client does."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def unthrottled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of requests a minute from one user: let them through, so they reach the views."""
    from compensation.http import ResilientUserRateThrottle

    monkeypatch.setattr(ResilientUserRateThrottle, "THROTTLE_RATES", {"user": "1000000/min", "anon": "60/min"})


def _fuzz(role: str) -> Any:
    """The test for one role: every operation, with a valid token of that role."""

    @schema.parametrize()
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @pytest.mark.usefixtures("demo_pack", "connection_kept", "unthrottled")
    def test(case: Any, make_user: Any) -> None:
        # Per example: each test's transaction is rolled back, and its users and tokens with it.
        _, key = make_user(f"fuzz-{role}", role)
        response = case.call_and_validate(headers={"Authorization": f"Token {key}"}, checks=CHECKS)
        SENT[role] += 1
        STATUSES[response.status_code] += 1

    return test


test_fuzz_as_agent = _fuzz("agent")
test_fuzz_as_manager = _fuzz("manager")
test_fuzz_as_analyst = _fuzz("analyst")


def test_the_fuzzing_sent_at_least_1000_requests() -> None:
    if not SENT:
        pytest.skip("the fuzzing tests were not selected in this run")
    print(f"schemathesis sent {sum(SENT.values())} requests: {dict(SENT)}; statuses {dict(sorted(STATUSES.items()))}")
    assert sum(SENT.values()) >= MINIMUM_REQUESTS, dict(SENT)
    # The tokens were valid: most answers got past authentication.
    assert STATUSES[401] < sum(STATUSES.values()) / 10, dict(STATUSES)
    assert STATUSES[200] > 0, dict(STATUSES)
