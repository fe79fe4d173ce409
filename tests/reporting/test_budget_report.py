"""The policies report's budget of the current month (API.md, "Policy lifecycle", last bullet):
``monthly_cap``, ``month_spent`` and ``month_remaining``, against hand-computed figures.

The month's spend is what ``PolicyMonthSpend`` holds for the month ``now`` is in (TIME_ZONE); rows
are written directly here (the charging path is tested in tests/compensation), and the clock is
frozen at ``NOW`` (``now=`` for the selector, time-machine for the API).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compensation.models import PolicyMonthSpend
from policies.models import Policy
from reporting.reports import ReportScope, report_by_policy
from tests.factories import PolicyFactory

pytestmark = pytest.mark.django_db

POLICIES = "/api/v1/reports/policies/"
NOW = datetime(2025, 6, 18, 12, 0, tzinfo=UTC)
JUNE, MAY, JULY = date(2025, 6, 1), date(2025, 5, 1), date(2025, 7, 1)


def capped(name: str, cap: str | None) -> Policy:
    return PolicyFactory(name=name, monthly_cap=None if cap is None else Decimal(cap))


def spend(policy: Policy, month: date, spent: str) -> None:
    PolicyMonthSpend.objects.create(policy=policy, month=month, spent=Decimal(spent), cap=policy.monthly_cap)


def budgets(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, Any, Any]]:
    return {row["policy"]["name"]: (row["monthly_cap"], row["month_spent"], row["month_remaining"]) for row in rows}


@pytest.fixture
def world(db: None) -> dict[str, Policy]:
    """Six policies, their spend in June 2025 (the current month) and around it.

    ========  =======  =======================  ==========================================
    policy    cap      spent                    budget this month (cap, spent, remaining)
    ========  =======  =======================  ==========================================
    Capped    1000.00  June 420.00, May 990.00  1000.00, 420.00, 580.00
    Untouched 500.00   nothing                  500.00, 0.00, 500.00
    Uncapped  none     June 120.00              null, 120.00, null
    Lowered   100.00   June 150.00 (cap was     100.00, 150.00, 0.00 (never below 0)
                       200.00 when charged)
    Before    300.00   May 300.00, July 10.00   300.00, 0.00, 300.00 (other months)
    Zero      0.00     nothing                  0.00, 0.00, 0.00
    ========  =======  =======================  ==========================================
    """
    policies = {
        "Capped": capped("Capped", "1000.00"),
        "Untouched": capped("Untouched", "500.00"),
        "Uncapped": capped("Uncapped", None),
        "Lowered": capped("Lowered", "200.00"),
        "Before": capped("Before", "300.00"),
        "Zero": capped("Zero", "0.00"),
    }
    spend(policies["Capped"], JUNE, "420.00")
    spend(policies["Capped"], MAY, "990.00")
    spend(policies["Uncapped"], JUNE, "120.00")
    spend(policies["Lowered"], JUNE, "150.00")
    Policy.objects.filter(pk=policies["Lowered"].pk).update(monthly_cap=Decimal("100.00"))
    spend(policies["Before"], MAY, "300.00")
    spend(policies["Before"], JULY, "10.00")
    return policies


EXPECTED = {
    "Before": ("300.00", "0.00", "300.00"),
    "Capped": ("1000.00", "420.00", "580.00"),
    "Lowered": ("100.00", "150.00", "0.00"),
    "Uncapped": (None, "120.00", None),
    "Untouched": ("500.00", "0.00", "500.00"),
    "Zero": ("0.00", "0.00", "0.00"),
}


def test_each_row_has_its_policys_budget_this_month(world: dict[str, Policy]) -> None:
    rows = report_by_policy(ReportScope(since=date(2025, 6, 1), until=date(2025, 6, 18)), now=NOW)

    assert budgets(rows) == EXPECTED
    assert list(rows[0]) == [
        "policy",
        "offered",
        "chosen",
        "acceptance_rate",
        "total_cost",
        "remedy_cost",
        "average_satisfaction",
        "monthly_cap",
        "month_spent",
        "month_remaining",
    ]


def test_the_api_answers_the_current_month_whatever_the_period(world: dict[str, Policy], manager: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        response = manager.get(POLICIES, {"since": "2024-01-01", "until": "2024-01-31"})

    assert response.status_code == 200, response.content
    assert budgets(response.json()) == EXPECTED


def test_a_policy_filter_keeps_its_budget(world: dict[str, Policy], manager: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        response = manager.get(POLICIES, {"policy": world["Capped"].pk})

    assert budgets(response.json()) == {"Capped": ("1000.00", "420.00", "580.00")}


def test_next_month_starts_from_nothing(world: dict[str, Policy]) -> None:
    rows = report_by_policy(ReportScope(), now=datetime(2025, 7, 1, 0, 0, tzinfo=UTC))

    assert budgets(rows)["Capped"] == ("1000.00", "0.00", "1000.00")
    assert budgets(rows)["Before"] == ("300.00", "10.00", "290.00")


def test_the_month_is_the_one_now_is_in_in_time_zone(world: dict[str, Policy], settings: Any) -> None:
    """July 1, 02:00 UTC is still June 30 in New York: June's spend."""
    settings.TIME_ZONE = "America/New_York"

    rows = report_by_policy(ReportScope(), now=datetime(2025, 7, 1, 2, 0, tzinfo=UTC))

    assert budgets(rows)["Capped"] == ("1000.00", "420.00", "580.00")
    assert budgets(rows)["Before"] == ("300.00", "0.00", "300.00")


def test_the_query_count_does_not_grow_with_the_policies(db: None, manager: Any) -> None:
    def queries() -> int:
        with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as captured:
            response = manager.get(POLICIES)
        assert response.status_code == 200
        return len(captured.captured_queries)

    for n in range(2):
        spend(capped(f"P{n}", "50.00"), JUNE, "5.00")
    few = queries()
    for n in range(2, 30):
        spend(capped(f"P{n}", "50.00" if n % 2 else None), JUNE, "5.00")

    assert queries() == few


def test_the_schema_declares_the_budget_fields(db: None, api_client: Any) -> None:
    schema = api_client.get("/api/schema/", {"format": "json"}).json()

    row = schema["components"]["schemas"]["PolicyReport"]
    assert {"monthly_cap", "month_spent", "month_remaining"} <= set(row["required"])
    assert row["properties"]["monthly_cap"]["nullable"] is True
    assert row["properties"]["month_remaining"]["nullable"] is True
    assert "nullable" not in row["properties"]["month_spent"]
