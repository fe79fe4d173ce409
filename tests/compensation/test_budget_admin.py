"""The policies' admin shows each policy's spend this month against its cap: a column with a bar in the
list, a read-only field in the change form's Budget fieldset (compensation's ``PolicyAdmin``, a subclass
of the policies app's, which may not read compensation's tables). The clock is frozen at ``NOW``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from compensation.admin import PolicyAdmin
from compensation.models import PolicyMonthSpend
from policies import admin as policies_admin
from policies.models import Policy
from tests.factories import PolicyFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
MARCH, FEBRUARY = date(2026, 3, 1), date(2026, 2, 1)
CHANGELIST = reverse("admin:policies_policy_changelist")


@pytest.fixture(autouse=True)
def _frozen(settings: Any) -> Iterator[None]:
    settings.TIME_ZONE = "UTC"
    with time_machine.travel(NOW, tick=False):
        yield


def policy(name: str, cap: str | None, *, march: str | None = None, february: str | None = None) -> Policy:
    made = PolicyFactory(name=name, monthly_cap=None if cap is None else Decimal(cap))
    for month, spent in ((MARCH, march), (FEBRUARY, february)):
        if spent is not None:
            PolicyMonthSpend.objects.create(policy=made, month=month, spent=Decimal(spent), cap=made.monthly_cap)
    return made


def cell(html: str, policy: Policy) -> str:
    """The list's "budget this month" cell of the policy's row."""
    row = re.search(rf"<tr>(?:(?!</tr>).)*?/{policy.pk}/change/(?:(?!</tr>).)*</tr>", html, re.S)
    assert row, f"no row for {policy.name}"
    found = re.search(r'<td class="field-budget_this_month">(.*?)</td>', row.group(0), re.S)
    assert found, "no budget column"
    return found.group(1)


def test_the_policy_admin_is_compensations_subclass() -> None:
    registered = admin.site._registry[Policy]

    assert type(registered) is PolicyAdmin
    assert isinstance(registered, policies_admin.PolicyAdmin)


def test_the_list_shows_spend_against_cap_with_a_bar(admin_client: Any) -> None:
    capped = policy("Capped", "1000.00", march="420.00", february="990.00")
    near = policy("Near", "200.00", march="170.00")
    uncapped = policy("Uncapped", None, march="120.00")
    untouched = policy("Untouched", "1234.50")

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Budget this month" in html
    assert "monthly_cap" not in html.split("<thead>")[1].split("</thead>")[0]  # the column replaces the cap's
    assert cell(html, capped).startswith('<span class="budget">420.00 / 1,000.00 (42%) <meter ')
    assert 'value="420.00"' in cell(html, capped)
    assert 'max="1000.00"' in cell(html, capped)
    assert 'aria-label="42% of the monthly cap spent"' in cell(html, capped)
    assert 'high="800.00"' in cell(html, capped)  # the meter turns at 80%
    assert "170.00 / 200.00 (85%)" in cell(html, near)
    assert cell(html, uncapped) == '<span class="budget">no cap · 120.00 spent</span>'
    assert "0.00 / 1,234.50 (0%)" in cell(html, untouched)


def test_a_cap_lowered_under_the_spend_shows_the_whole_bar(admin_client: Any) -> None:
    lowered = policy("Lowered", "200.00", march="150.00")
    Policy.objects.filter(pk=lowered.pk).update(monthly_cap=Decimal("100.00"))

    html = admin_client.get(CHANGELIST).content.decode()

    assert "150.00 / 100.00 (150%)" in cell(html, lowered)
    assert 'value="100.00"' in cell(html, lowered)


def test_the_list_sorts_by_the_months_spend(admin_client: Any) -> None:
    for name, spent in (("Low", "10.00"), ("High", "90.00"), ("None", None)):
        policy(name, "100.00", march=spent)
    column = PolicyAdmin.list_display.index("budget_this_month") + 1  # the action checkbox is column 0

    response = admin_client.get(CHANGELIST, {"o": f"-{column}"})

    assert response.status_code == 200
    assert [p.name for p in response.context["cl"].result_list] == ["High", "Low", "None"]


def test_the_list_costs_no_query_per_policy(admin_client: Any) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(CHANGELIST).status_code == 200
        return len(captured.captured_queries)

    policy("P0", "100.00", march="10.00")
    few = queries()
    for n in range(1, 15):
        policy(f"P{n}", "100.00" if n % 2 else None, march=f"{n}.00")

    assert queries() == few


def test_the_change_form_shows_the_budget_this_month_read_only(admin_client: Any) -> None:
    capped = policy("Capped", "1000.00", march="420.00", february="990.00")

    response = admin_client.get(reverse("admin:policies_policy_change", args=[capped.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    budget = html[html.index(">Budget</h2>") :]
    field = re.search(r'<div class="readonly">(.*?)</div>', budget, re.S)
    assert field, "no read-only field in the Budget fieldset"
    assert "Spent this month:" in budget
    assert field.group(1).startswith('<span class="budget">420.00 / 1,000.00 (42%) <meter ')
    assert field.group(1).endswith("</span>, 580.00 left in March 2026")
    assert 'name="spent_this_month"' not in html  # shown, not posted


def test_the_change_form_of_an_uncapped_policy(admin_client: Any) -> None:
    uncapped = policy("Uncapped", None)

    html = admin_client.get(reverse("admin:policies_policy_change", args=[uncapped.pk])).content.decode()

    assert '<span class="budget">no cap · 0.00 spent</span> in March 2026' in html


def test_the_add_form_has_no_budget_this_month(admin_client: Any) -> None:
    response = admin_client.get(reverse("admin:policies_policy_add"))

    assert response.status_code == 200
    assert "Spent this month" not in response.content.decode()
    assert 'name="monthly_cap"' in response.content.decode()
