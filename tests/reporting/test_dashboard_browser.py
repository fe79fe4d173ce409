"""The operations dashboard in a real browser: reached from the admin index, its SVG charts laid out
and drawn (visible, with a size, one mark per figure), the learning chart's intervals, and the escalation figures
shown.

Runs Debian's Chromium headless through Playwright's sync API against
pytest-django's live server. Skipped locally when Chromium is missing; fails in CI.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Locator, expect, sync_playwright

from tests.browser.test_admin_browser import CHROMIUM_ARGS, STEP_TIMEOUT_MS
from tests.reporting.test_dashboard import escalation_due, learned_counters, month_new

SCREENSHOT = Path("/tmp/dashboard_browser_failure.png")  # noqa: S108 - a debugging aid, overwritten each run
CHARTS = ["chart-offers", "chart-cost", "chart-satisfaction", "chart-acceptance", "chart-learning-late_delivery"]


def _has_area(locator: Locator) -> None:
    box = locator.bounding_box()
    assert box is not None, "not laid out"
    assert box["width"] > 0
    assert box["height"] > 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_is_linked_from_the_admin_index_and_draws_its_charts(
    chromium_path: str, live_server: Any, django_user_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    agent = django_user_model.objects.create_user("agent-1")
    # Three days with offers or outcomes; P offered 3 / chosen 1, Q 3 / 2, R 1 / 0 (see month_new).
    month_new(agent, timezone.localdate())
    # What the ranking learned in late deliveries: two offers, each a 90% interval and its mean.
    learned_counters("late_delivery", title="Credit 4", a=10, chosen=4)
    learned_counters("late_delivery", title="Credit 1", shard=1, a=10, chosen=1)
    overdue = escalation_due(due_at=timezone.now() - timedelta(hours=3), reason="Parcel lost twice")
    escalation_due(due_at=timezone.now() + timedelta(hours=3))
    django_user_model.objects.create_superuser("ops-lead", "lead@example.com", "correct-horse-battery")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(STEP_TIMEOUT_MS)
        expect.set_options(timeout=STEP_TIMEOUT_MS)
        try:
            page.goto(f"{live_server.url}/admin/login/")
            page.fill("#id_username", "ops-lead")
            page.fill("#id_password", "correct-horse-battery")
            page.click("input[type=submit]")
            expect(page).to_have_url(f"{live_server.url}/admin/")

            page.locator("#operations-module").get_by_role("link", name="Dashboard: the last 30 days").click()
            expect(page).to_have_url(f"{live_server.url}/admin/dashboard/")
            expect(page.locator("#content h1")).to_have_text("Operations dashboard")

            for chart_id in CHARTS:
                svg = page.locator(f"svg#{chart_id}")
                expect(svg).to_be_visible()
                _has_area(svg)
                expect(svg.locator(".empty-state")).to_have_count(0)
            # Made: two days with 2 sets each; accepted: 1 on the window's first day, 2 two days ago.
            expect(page.locator("#chart-offers rect.bar.series-0")).to_have_count(2)
            expect(page.locator("#chart-offers rect.bar.series-1")).to_have_count(2)
            expect(page.locator("#chart-cost rect.bar")).to_have_count(2)  # 5.00 and 12.50; today cost nothing
            expect(page.locator("#chart-satisfaction circle.point")).to_have_count(2)  # averages 3 and 1
            expect(page.locator("#chart-acceptance rect.bar")).to_have_count(3)
            for bar in page.locator("#chart-offers rect.bar, #chart-cost rect.bar").all():
                _has_area(bar)
            for point in page.locator("#chart-satisfaction circle.point").all():
                _has_area(point)
            expect(page.locator("#chart-acceptance text.value")).to_have_text(
                ["33% (1 of 3)", "67% (2 of 3)", "0% (0 of 1)"]
            )
            expect(page.locator("#chart-learning-late_delivery rect.range")).to_have_count(2)
            expect(page.locator("#chart-learning-late_delivery circle.mark")).to_have_count(2)
            for drawn in page.locator(
                "#chart-learning-late_delivery rect.range, #chart-learning-late_delivery circle.mark"
            ).all():
                _has_area(drawn)
            expect(page.locator("#learning h3")).to_have_text(["late delivery"])

            expect(page.locator("#escalation-open .number")).to_have_text("2")
            expect(page.locator("#escalation-overdue .number")).to_have_text("1")
            row = page.locator("#most-overdue tbody tr")
            expect(row).to_have_count(1)
            expect(row).to_contain_text("Parcel lost twice")
            row.get_by_role("link", name=f"#{overdue.pk}").click()
            expect(page).to_have_url(f"{live_server.url}/admin/compensation/escalation/{overdue.pk}/change/")
        except Exception:
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            raise
        finally:
            browser.close()
