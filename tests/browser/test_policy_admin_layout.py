"""The policy admin on a 1,280 px wide screen, the demo pack loaded: the policy list fits its frame (no
sideways scrolling, in the list or the page), and on a policy's page each offer's title field shows its
whole template ("A {value} credit toward your next order, {customer_name}").

Runs Debian's Chromium headless through Playwright's sync API against pytest-django's live server.
Skipped locally when Chromium is missing; fails in CI.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models.functions import Length
from playwright.sync_api import Page, expect, sync_playwright

from policies.models import OfferTemplate, Policy
from tests.browser.test_admin_browser import CHROMIUM_ARGS, STEP_TIMEOUT_MS, _log_in

PASSWORD = "correct-horse-battery"
TEMPLATE = "A {value} credit toward your next order, {customer_name}"
SIXTY_CHARACTERS = "A {value} credit toward your next order, {customer_name}, too"

LIST_FITS = """() => {
    const table = document.querySelector('#result_list');
    const frame = table.parentElement;  // div.results, which scrolls sideways when the table is wider
    const page = document.documentElement;
    return {
        table: table.scrollWidth, frame: frame.clientWidth, frameScroll: frame.scrollWidth,
        page: page.scrollWidth, viewport: page.clientWidth, rows: table.querySelectorAll('tbody tr').length,
    };
}"""

# For each title field: how wide it is inside its padding, how wide its value is, and how wide a text of
# sixty characters is in its font (measured on a canvas).
TITLE_FIELDS = """(text) => {
    const context = document.createElement('canvas').getContext('2d');
    return [...document.querySelectorAll('.inline-related:not(.empty-form) input[name$="-title"]')].map(input => {
        const style = getComputedStyle(input);
        context.font = style.font;
        const inner = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        return {
            name: input.name, value: input.value, client: input.clientWidth, scroll: input.scrollWidth,
            inner: inner, needed: context.measureText(text).width,
        };
    });
}"""


def _browser_page(playwright: Any, chromium_path: str, width: int, height: int) -> tuple[Any, Page]:
    browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(STEP_TIMEOUT_MS)
    expect.set_options(timeout=STEP_TIMEOUT_MS)
    return browser, page


@pytest.fixture
def policy_admin(demo_pack: None, django_user_model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Playwright's sync API runs an event loop in this thread; the ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1600, 900)])
def test_the_policy_list_fits_its_frame(
    width: int, height: int, chromium_path: str, live_server: Any, policy_admin: None
) -> None:
    policies = Policy.objects.count()
    assert policies >= 15  # the demo pack's

    with sync_playwright() as playwright:
        browser, page = _browser_page(playwright, chromium_path, width, height)
        try:
            _log_in(page, live_server.url, "admin", PASSWORD)
            page.goto(f"{live_server.url}/admin/policies/policy/")
            expect(page.locator("#result_list tbody tr")).to_have_count(policies)

            sizes = page.evaluate(LIST_FITS)

            assert sizes["rows"] == policies
            assert sizes["table"] <= sizes["frame"], sizes
            assert sizes["frameScroll"] <= sizes["frame"], sizes
            assert sizes["page"] <= sizes["viewport"], sizes
            # Every column is still there, each heading read whole.
            headings = page.locator("#result_list thead th").all_inner_texts()
            assert [" ".join(h.split()).lower() for h in headings[1:]] == [
                "name",
                "slug",
                "active",
                "priority",
                "placement",
                "categories",
                "escalates",
                "version",
                "budget this month",
                "per-customer cap (30 days)",
            ]
            # The way home stays whether or not the admin's menu is shown beside the list.
            expect(page.locator("div.breadcrumbs a", has_text="Home")).to_be_visible()
            if width >= 1600:
                expect(page.locator("#nav-sidebar")).to_be_visible()
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_offer_title_field_shows_its_whole_template(
    chromium_path: str, live_server: Any, policy_admin: None
) -> None:
    longest = OfferTemplate.objects.annotate(length=Length("title")).order_by("-length").first()
    assert longest is not None
    assert len(longest.title) >= 55, longest.title  # "{value}% off your next order, because this happened again"

    with sync_playwright() as playwright:
        browser, page = _browser_page(playwright, chromium_path, 1280, 800)
        try:
            _log_in(page, live_server.url, "admin", PASSWORD)
            page.goto(f"{live_server.url}/admin/policies/policy/{longest.policy_id}/change/")
            expect(page.locator("input[name^='offers-'][name$='-title']").first).to_be_visible()

            fields = page.evaluate(TITLE_FIELDS, SIXTY_CHARACTERS)

            assert longest.title in [field["value"] for field in fields]
            for field in fields:
                assert field["scroll"] <= field["client"], field  # its template shows whole
                assert field["inner"] >= field["needed"], field  # room for sixty characters

            first = page.locator(".inline-related:not(.empty-form) input[name$='-title']").first
            first.fill(TEMPLATE)
            assert first.evaluate("input => input.scrollWidth <= input.clientWidth")
            # The message under it is at least as wide.
            widths = page.evaluate(
                """() => {
                    const row = document.querySelector('.inline-related:not(.empty-form)');
                    return [row.querySelector('input[name$="-title"]').offsetWidth,
                            row.querySelector('textarea[name$="-message"]').offsetWidth];
                }"""
            )
            assert widths[1] >= widths[0] * 0.95, widths
        finally:
            browser.close()
