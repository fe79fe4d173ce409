"""The admin's "Simulate" in a real browser: open a policy, change an offer's value, press Simulate, read the
result above the form (the change still in it), and nothing saved.

Runs Debian's Chromium headless through Playwright's sync API against
pytest-django's live server. Skipped locally when Chromium is missing; fails in CI.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from compensation.models import Customer, Incident
from policies.models import Category, Policy, PolicyRevision, PolicyVersion
from policies.packs import pack_import
from tests.browser.test_admin_browser import _log_in, chromium_page
from tests.compensation.test_simulations import LIVE

SCREENSHOT = Path("/tmp/simulate_browser_failure.png")  # noqa: S108 - a debugging aid, overwritten each run


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_simulates_an_unsaved_change_and_nothing_is_saved(
    chromium_path: str, live_server: Any, django_user_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    pack_import(document=copy.deepcopy(LIVE))
    customer = Customer.objects.create(external_id="c1", name="Ann Smith", tier="standard")
    late = Category.objects.get(slug="late_delivery")
    now = timezone.now()
    for days_ago in (1, 2, 3, 4):  # four late deliveries, each given late-credit's credit alone
        incident = Incident.objects.create(
            customer=customer,
            category=late,
            severity=2,
            order_value=Decimal("40"),
            currency="USD",
            occurred_at=now - timedelta(days=days_ago),
        )
        Incident.objects.filter(pk=incident.pk).update(created_at=now - timedelta(days=days_ago))
    django_user_model.objects.create_superuser("policy-editor", "editor@example.com", "correct-horse-battery")
    policy = Policy.objects.get(slug="late-credit")
    revision = list(PolicyRevision.objects.values_list("number", flat=True))

    with chromium_page(chromium_path, screenshot=SCREENSHOT) as page:
        _log_in(page, live_server.url, "policy-editor", "correct-horse-battery")
        page.goto(f"{live_server.url}/admin/policies/policy/{policy.pk}/change/")
        expect(page.get_by_role("heading", name="Simulation result")).to_have_count(0)

        page.fill("#id_offers-0-value", "15")
        expect(page.get_by_label("Simulate over the last")).to_have_value("30")
        page.get_by_role("button", name="Simulate").click()

        result = page.get_by_role("region", name="Simulation result")
        expect(result).to_be_visible()
        expect(result).to_contain_text("Nothing was saved.")
        expect(result).to_contain_text("Every incident of the window replayed (4).")
        this_policy = result.get_by_role("table", name="This policy")
        # Four credits of 10.00, then 15.00, each times the prior 0.3333: 13.332 and 19.998.
        expect(this_policy.get_by_role("row", name="late-credit")).to_contain_text("4 → 4")
        expect(this_policy.get_by_role("row", name="late-credit")).to_contain_text("13.33 → 20.00")
        expect(result.get_by_role("table", name="Before").first).to_contain_text("A 10 credit")
        expect(result.get_by_role("table", name="After").first).to_contain_text("A 15 credit")
        # The form is as posted, ready to simulate again or save.
        expect(page.locator("#id_offers-0-value")).to_have_value("15")
        page.screenshot(path="/tmp/simulate_browser_result.png", full_page=True)  # noqa: S108

    assert Policy.objects.get(slug="late-credit").offers.get().value == Decimal("10.00")
    assert PolicyVersion.objects.filter(policy=policy).count() == 1
    assert list(PolicyRevision.objects.values_list("number", flat=True)) == revision
