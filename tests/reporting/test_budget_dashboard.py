"""The dashboard's budget chart: each active capped policy's spend this month against its cap, nearest the
cap first, the 80% mark drawn, those at 80% or more flagged in words; and its empty state."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.urls import reverse

from compensation.models import PolicyMonthSpend
from policies.models import Policy
from reporting.dashboard import budget_chart, dashboard_budgets
from tests.factories import PolicyFactory
from tests.reporting.test_dashboard import URL, bars, chart

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 20, 15, 0, tzinfo=UTC)
MARCH, FEBRUARY = date(2025, 3, 1), date(2025, 2, 1)


@pytest.fixture(autouse=True)
def _utc(settings: Any) -> None:
    settings.TIME_ZONE = "UTC"


def policy(name: str, cap: str | None, march: str | None = None, *, active: bool = True) -> Policy:
    made = PolicyFactory(name=name, monthly_cap=None if cap is None else Decimal(cap), active=active)
    if march is not None:
        PolicyMonthSpend.objects.create(policy=made, month=MARCH, spent=Decimal(march), cap=made.monthly_cap)
    return made


@pytest.fixture
def capped(db: None) -> dict[str, Policy]:
    """Active and capped: Over (cap lowered to 50.00 under 60.00 spent: 120%), Full (100.00 of 100.00), Near
    (85.00 of 100.00), Edge (79.99 of 100.00: 79%, not flagged), Idle (nothing; 400.00 in February).
    Left out: Free (uncapped, 500.00 spent) and Retired (inactive, 90.00 of 100.00)."""
    made = {
        "Near": policy("Near", "100.00", "85.00"),
        "Edge": policy("Edge", "100.00", "79.99"),
        "Full": policy("Full", "100.00", "100.00"),
        "Over": policy("Over", "100.00", "60.00"),
        "Idle": policy("Idle", "1000.00"),
        "Free": policy("Free", None, "500.00"),
        "Retired": policy("Retired", "100.00", "90.00", active=False),
    }
    Policy.objects.filter(pk=made["Over"].pk).update(monthly_cap=Decimal("50.00"))
    PolicyMonthSpend.objects.create(policy=made["Idle"], month=FEBRUARY, spent=Decimal("400.00"))
    return made


def test_budgets_are_the_active_capped_policies_nearest_their_cap_first(capped: dict[str, Policy]) -> None:
    budgets = dashboard_budgets(now=NOW)

    assert budgets.month == MARCH
    assert [(p.name, p.budget.spent, p.budget.cap, p.budget.percent) for p in budgets.policies] == [
        ("Over", Decimal("60.00"), Decimal("50.00"), 120),
        ("Full", Decimal("100.00"), Decimal("100.00"), 100),
        ("Near", Decimal("85.00"), Decimal("100.00"), 85),
        ("Edge", Decimal("79.99"), Decimal("100.00"), 79),
        ("Idle", Decimal("0.00"), Decimal("1000.00"), 0),
    ]
    assert [p.name for p in budgets.near_cap] == ["Over", "Full", "Near"]


def test_the_chart_draws_each_budget_the_80_percent_mark_and_flags_in_words(capped: dict[str, Policy]) -> None:
    svg = budget_chart(dashboard_budgets(now=NOW))

    assert '<svg class="chart" id="chart-budgets"' in svg
    assert '<title id="chart-budgets-title">Budgets this month: spend against the monthly cap (March 2025)' in svg
    assert bars(svg) == ["1.2", "1.0", "0.85", "0.7999", "0.0"]
    assert re.search(r'<line class="marker"[^>]*data-value="0.8"><title>80%</title></line>', svg)
    assert ">60.00 / 50.00 (120%, over cap)</text>" in svg
    assert ">100.00 / 100.00 (100%, at cap)</text>" in svg
    assert ">85.00 / 100.00 (85%, past 80%)</text>" in svg
    assert ">79.99 / 100.00 (79%)</text>" in svg
    assert ">0.00 / 1,000.00 (0%)</text>" in svg
    assert svg.count('class="bar series-0 flagged"') == 3
    assert "3 at 80% or more: Over (120%), Full (100%), Near (85%)." in svg  # the description
    assert "<title>Near: 85.00 / 100.00 (85%, past 80%)</title>" in svg  # the bar's tooltip


def test_the_chart_keeps_the_15_nearest_and_says_so(db: None) -> None:
    for n in range(20):
        policy(f"P{n:02}", "100.00", f"{n}.00")

    svg = budget_chart(dashboard_budgets(now=NOW))

    assert len(bars(svg)) == 15
    assert bars(svg)[0] == "0.19"
    assert "20 active policies with a monthly cap, the 15 nearest their cap shown. None has spent 80%" in svg


def test_without_capped_policies_the_chart_says_so(db: None) -> None:
    policy("Free", None, "500.00")

    svg = budget_chart(dashboard_budgets(now=NOW))

    assert "No active policy has a monthly cap." in svg
    assert bars(svg) == []


def test_the_page_shows_the_budget_chart_and_names_those_near_their_cap(
    admin_client: Any, capped: dict[str, Policy]
) -> None:
    with time_machine.travel(NOW, tick=False):
        response = admin_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h2>Budgets this month (March 2025)</h2>" in html
    assert len(bars(chart(html, "chart-budgets"))) == 5
    near = re.search(r'<p id="budgets-near-cap">(.*?)</p>', html, re.S)
    assert near
    text = re.sub(r"<[^>]+>", "", near.group(1))
    assert re.sub(r"\s+", " ", text).strip() == "At 80% of the cap or more: Over (120%), Full (100%), Near (85%)."
    assert f'href="{reverse("admin:policies_policy_change", args=[capped["Near"].pk])}"' in near.group(1)


def test_the_page_says_when_no_policy_is_near_its_cap(admin_client: Any) -> None:
    policy("Calm", "100.00", "10.00")

    with time_machine.travel(NOW, tick=False):
        html = admin_client.get(URL).content.decode()

    assert "No policy has spent 80% of its cap this month." in html


def test_an_empty_page_has_the_budget_charts_empty_state(admin_client: Any) -> None:
    html = admin_client.get(URL).content.decode()

    assert "No active policy has a monthly cap." in chart(html, "chart-budgets")
    assert 'id="budgets-near-cap"' not in html
