"""Schema-driven fuzzing: schemathesis generates requests from ``/api/schema/`` (valid and
invalid ones, in its coverage and fuzzing phases) for every operation, sends them through the
WSGI application with a valid token of each role, and checks each answer: never a 5xx, a status
code the schema declares, the declared content type, and a body that matches the declared schema.

One test per operation and role (``test_fuzz[<operation>][<role>]``). Each counts its own
requests and checks them when it ends (the ``tally`` fixture's teardown): at least
``MINIMUM_REQUESTS_PER_TEST`` requests and no 401 (the token is valid); for an operation the role
may not call, no 2xx at all, only 403s (and 404s where the URL names nothing).
``test_the_fuzzing_covers_every_operation_with_at_least_1000_requests`` checks that the tests
cover every operation of the schema and that their minimums add up to ``MINIMUM_REQUESTS``.
``-rP`` shows each test's statuses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
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

EXAMPLES_PER_OPERATION = 25  # the fuzzing phase's; the coverage phase adds cases of its own
MINIMUM_REQUESTS_PER_TEST = 25
MINIMUM_REQUESTS = 1000
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
ROLES = ("agent", "manager", "analyst")

# What each role may call (README, "Roles"; the table of tests/test_permission_matrix.py).
EVERYONE = {"GET /api/v1/me/", "POST /api/v1/feedback/{token}/"}  # the feedback link needs no login
OFFER_SETS = {
    "GET /api/v1/offer-sets/",
    "POST /api/v1/offer-sets/",
    "GET /api/v1/offer-sets/{offer_set_id}/",
    "POST /api/v1/offer-sets/{offer_set_id}/outcome/",
}
ESCALATIONS = {
    "GET /api/v1/escalations/",
    "GET /api/v1/escalations/{escalation_id}/",
    "POST /api/v1/escalations/{escalation_id}/acknowledge/",
    "POST /api/v1/escalations/{escalation_id}/resolve/",
    "POST /api/v1/escalations/{escalation_id}/approve/",
    "POST /api/v1/escalations/{escalation_id}/reject/",
}
READING = {
    "GET /api/v1/outcomes/",
    "GET /api/v1/reports/summary/",
    "GET /api/v1/reports/policies/",
    "GET /api/v1/reports/offer-kinds/",
    "GET /api/v1/reports/categories/",
}
AGENT_REPORT = {"GET /api/v1/reports/agents/"}
ALLOWED = {
    "agent": EVERYONE | OFFER_SETS,
    "manager": EVERYONE | OFFER_SETS | ESCALATIONS | READING | AGENT_REPORT,
    "analyst": EVERYONE | READING,
}
OPERATIONS = EVERYONE | OFFER_SETS | ESCALATIONS | READING | AGENT_REPORT


def _schema() -> Any:
    """The schema as the running application serves it (collection time: no database is needed)."""
    from recovery_project.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application)


schema = _schema()


# --- The count of one test's requests ----------------------------------------------------------


@dataclass
class Tally:
    """What this test's requests got."""

    role: str
    key: str
    operation: str | None = None
    statuses: dict[int, int] = field(default_factory=dict)
    failed: bool = False

    def count(self, case: Any, status: int) -> None:
        self.operation = case.operation.label
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def report(self) -> str:
        """One line for ``-rP``: what the test's requests got."""
        statuses = json.dumps(dict(sorted(self.statuses.items())))
        may = "may" if self.operation in ALLOWED[self.role] else "may not"
        return f"fuzz {self.role} {may} {self.operation}: {statuses}"

    def check(self) -> None:
        """What the test's requests, together, must show."""
        sent = sum(self.statuses.values())
        answers = f"{sent} requests: {self.statuses}"
        assert sent >= MINIMUM_REQUESTS_PER_TEST, answers
        assert 401 not in self.statuses, f"a valid token was refused: {answers}"
        if self.operation not in ALLOWED[self.role]:
            # A refusal, whatever the request; a 404 when the URL names nothing (a malformed id,
            # an unknown ?format) and so no view, and no permission check, is reached.
            assert set(self.statuses) <= {403, 404}, answers
            assert 403 in self.statuses, answers


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def connection_kept() -> Iterator[None]:
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


@pytest.fixture
def tally(role: str, demo_pack: None, connection_kept: None, unthrottled: None, make_user: Any) -> Iterator[Tally]:
    """This test's user and count; when the test ends, its requests are checked (unless an example
    failed: that failure is the report)."""
    _, key = make_user(f"fuzz-{role}", role)
    counted = Tally(role=role, key=key)
    yield counted
    print(counted.report())
    if not counted.failed:
        counted.check()


# --- The fuzzing ------------------------------------------------------------------------------


@schema.parametrize()
@pytest.mark.parametrize("role", ROLES)
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_fuzz(case: Any, role: str, tally: Tally) -> None:
    try:
        response = case.call_and_validate(headers={"Authorization": f"Token {tally.key}"}, checks=CHECKS)
    except BaseException:
        tally.failed = True
        raise
    tally.count(case, response.status_code)


def test_the_fuzzing_covers_every_operation_with_at_least_1000_requests() -> None:
    """Every operation of the schema is fuzzed as every role, each test sending at least its minimum."""
    operations = {result.ok().label for result in schema.get_all_operations()}

    assert operations == OPERATIONS
    assert len(operations) * len(ROLES) * MINIMUM_REQUESTS_PER_TEST >= MINIMUM_REQUESTS
