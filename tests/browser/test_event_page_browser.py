"""The customer's page of an event (``/r/{token}/``) in a real browser on a phone-sized screen, with JavaScript
on and off: the link of an option from the e-mail opens the page with that option's button in focus, the
options are buttons by their names, pressing one shows the choice made, and axe-core finds no serious or
critical violation.

Runs Debian's Chromium headless through Playwright's sync API against pytest-django's live server (tasks run
eagerly, so the event is e-mailed, and a choice recorded, as soon as its transaction commits). Skipped locally
when Chromium is missing; fails in CI. The database is read before and after the browser, never while it runs
(see tests/browser/test_console_browser.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import Page, expect, sync_playwright

from compensation.models import Escalation, Offer, Outcome, OutcomeSubmission
from tests.browser.test_admin_browser import CHROMIUM_ARGS, STEP_TIMEOUT_MS
from tests.browser.test_console_browser import axe_check

SCREENSHOT = Path("/tmp/event_page_browser_failure.png")  # noqa: S108 - a debugging aid, overwritten each run
PHONE = {"width": 390, "height": 844}
EVENT_NAME = "North warehouse missed Tuesday's deliveries"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@contextmanager
def phone_page(chromium_path: str, *, javascript: bool) -> Iterator[Page]:
    """A phone-sized page of headless Chromium, JavaScript on or off; a screenshot on a failure inside."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport=PHONE, java_script_enabled=javascript, is_mobile=True, has_touch=True, device_scale_factor=2
        )
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        expect.set_options(timeout=STEP_TIMEOUT_MS)
        try:
            yield page
        except Exception:
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            raise
        finally:
            browser.close()


@pytest.fixture
def maria_link(demo_pack: None, manager: Any, live_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Post an event for Maria as the manager and read her e-mail: its "Choose b" link (on the live server)
    and what her options are called."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's event loop runs in this thread
    body = {
        "name": EVENT_NAME,
        "category": "missed_delivery",
        "severity": 3,
        "description": "A conveyor failure held back every Tuesday delivery.",
        "customers": [{"external_id": "EV-1", "name": "Maria Lopez", "email": "maria@example.com"}],
    }
    assert manager.post("/api/v1/events/", body, format="json").status_code == 202
    (message,) = mail.outbox
    link = re.search(r"Choose b: (https?://\S+/r/[0-9a-f]{43}/\?option=b)", message.body)
    assert link is not None, message.body
    titles = dict(Offer.objects.filter(offer_set__event_customer__external_id="EV-1").values_list("label", "title"))
    assert sorted(titles) == ["a", "b", "c"]
    return {"url": re.sub(r"^https?://[^/]+", live_server.url, link.group(1)), "titles": titles}


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_a_customer_opens_the_link_of_option_b_on_a_phone_and_chooses_it(
    chromium_path: str, maria_link: dict[str, Any], javascript: bool
) -> None:
    titles = maria_link["titles"]
    with phone_page(chromium_path, javascript=javascript) as page:
        page.goto(maria_link["url"])

        expect(page.get_by_role("heading", level=1)).to_have_text("Maria, we're sorry")
        expect(page.get_by_text(EVENT_NAME)).to_be_visible()
        for label in "abc":
            option = page.get_by_role("region", name=f"{label}) {titles[label]}", exact=True)
            expect(option.get_by_role("button", name=f"Choose {label}", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="None of these", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Please call me", exact=True)).to_be_visible()
        choose_b = page.get_by_role("button", name="Choose b", exact=True)
        expect(choose_b).to_be_focused()  # the link was for option b: no need to find it on the page
        expect(choose_b).to_have_accessible_description(re.compile(re.escape(titles["b"])))
        if javascript:
            assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]  # no sideways scroll
            axe_check(page, "the customer's page")

        choose_b.click()

        status = page.get_by_role("status")
        expect(status).to_contain_text(f"You chose b) {titles['b']}")
        expect(status.get_by_role("heading")).to_have_text("Thank you, Maria")
        expect(page.get_by_role("button")).to_have_count(0)  # the choice is made
        if javascript:
            axe_check(page, "the customer's page after the choice")
        page.reload()  # the browser posts the form again: the same press is answered as before
        expect(page.get_by_role("status")).to_contain_text(f"You chose b) {titles['b']}")
        page.goto(maria_link["url"].split("?")[0])
        expect(page.get_by_role("status")).to_contain_text(f"You chose b) {titles['b']}")

    assert OutcomeSubmission.objects.count() == 1
    assert Outcome.objects.get().choice == "b"


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_a_customer_asks_to_be_called_and_can_still_choose(
    chromium_path: str, maria_link: dict[str, Any], javascript: bool
) -> None:
    with phone_page(chromium_path, javascript=javascript) as page:
        page.goto(maria_link["url"].replace("option=b", "option=call"))
        call = page.get_by_role("button", name="Please call me", exact=True)
        expect(call).to_be_focused()

        call.click()

        expect(page.get_by_role("status")).to_contain_text("We will call you")
        expect(page.get_by_role("button", name="Please call me")).to_have_count(0)
        if javascript:
            axe_check(page, "the customer's page after asking to be called")
        page.get_by_role("button", name="None of these", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("none of these suit you")

    assert Escalation.objects.filter(kind=Escalation.Kind.SENIOR_MANAGER, reason__contains=EVENT_NAME).count() == 1
    assert Outcome.objects.get().choice == "declined"


def test_a_bad_link_is_a_page_in_words_that_axe_accepts(chromium_path: str, live_server: Any) -> None:
    with phone_page(chromium_path, javascript=True) as page:
        answer = page.goto(f"{live_server.url}/r/{'0' * 43}/")

        assert answer is not None
        assert answer.status == 404
        expect(page.get_by_role("alert")).to_contain_text("We could not find this link")
        axe_check(page, "the page of a bad link")
