"""The agents' page of the console in a real browser: log in, get options, choose, record and read the status in
words; declined; a validation message at its field; the keys; an option that waits for a manager's approval; the
stored customer filling the form; and axe-core finding no serious or critical violation on each page.

Runs Debian's Chromium headless through Playwright's sync API against pytest-django's live server (tasks run
eagerly, so an outcome is recorded as soon as it is accepted). Skipped locally when Chromium is missing; fails in
CI. axe-core is vendored into the tests (tests/browser/vendor), injected into the page, never served by the app.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from playwright.sync_api import Page, expect

from compensation.models import Customer, OfferSet, Outcome, OutcomeSubmission
from tests.browser.test_admin_browser import chromium_page

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOT = Path("/tmp/console_browser_failure.png")  # noqa: S108 - a debugging aid, overwritten each run
PASSWORD = "correct-horse-battery"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def console(chromium_path: str, live_server: Any, monkeypatch: pytest.MonkeyPatch, demo_pack: None) -> Any:
    """Open a browser logged in to the console as a new user of ``role`` (``groups``: more groups to be in).

    The database is read before and after the browser, never while it runs: Playwright's event loop gives an ORM
    call in this thread a connection of its own that nothing closes (PostgreSQL then cannot drop the test database).
    """
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    @contextmanager
    def open_as(
        username: str, role: str = "agent", *, groups: tuple[Group, ...] = (), axe: bool = False
    ) -> Iterator[Page]:
        from compensation.services.users import user_token_issue

        user, _, _ = user_token_issue(username=username, role=role)
        user.set_password(PASSWORD)
        user.save()
        user.groups.add(*groups)
        with chromium_page(chromium_path, screenshot=SCREENSHOT) as page:
            page.goto(f"{live_server.url}/console/")
            expect(page).to_have_url(f"{live_server.url}/console/login/?next=/console/")
            if axe:
                axe_check(page, "the login page")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page).to_have_url(f"{live_server.url}/console/")
            page.wait_for_load_state()  # the URL commits before htmx starts: typing sooner fires no request
            yield page

    return open_as


def axe_check(page: Page, where: str) -> None:
    """No serious or critical axe-core violation on the page as it is now (the others printed, for the record)."""
    if page.evaluate("typeof window.axe") == "undefined":
        page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run(document)).violations")
    for violation in violations:
        targets = [node["target"] for node in violation["nodes"]]
        print(f"axe on {where}: {violation['impact']} {violation['id']}: {violation['help']} {targets}")
    bad = [v["id"] for v in violations if v["impact"] in {"serious", "critical"}]
    assert not bad, f"axe on {where}: {bad}"


def fill_incident(page: Page, *, customer_id: str = "C-1001", category: str = "damaged item") -> None:
    """A gold customer's damaged item: the demo pack's remedy and three options of 15.00 to 20.00."""
    page.get_by_label("Customer ID").fill(customer_id)
    page.get_by_label("Name").fill("Linda Park")
    page.get_by_label("E-mail").fill("linda@example.com")
    page.get_by_label("Tier").fill("Gold")  # typed, any case
    page.get_by_label("Lifetime value").fill("5400.00")
    page.get_by_label("Interests").fill("sports, cooking")
    page.get_by_label("Category").select_option(label=category)
    page.get_by_label("Severity").fill("3")
    page.get_by_label("Fault").fill("company")
    expect(page.get_by_label("Correctable")).to_be_checked()
    page.get_by_label("Order value").fill("80.00")
    page.get_by_label("Ticket").fill("TCK-42")
    page.get_by_label("What happened").fill("The vase arrived in pieces")


def expect_options(page: Page) -> None:
    expect(page.get_by_role("region", name="First, the fix")).to_contain_text("The right item, shipped express today")
    for label in "abc":
        option = page.get_by_role("region", name=f"Option {label}", exact=True)
        expect(option).to_be_visible()
        expect(option.get_by_role("button", name=f"Choose {label}", exact=True)).to_be_visible()
    expect(page.locator("#results-heading")).to_be_focused()  # focus moved to the options


def test_an_agent_gets_options_chooses_b_and_sees_it_recorded(console: Any) -> None:
    Customer.objects.create(external_id="C-1001", name="Linda Park", email="linda@example.com", tier="gold")
    with console("agent-1", axe=True) as page:
        # The exact ID fills the form from the stored customer.
        posted: list[str] = []
        page.on("request", lambda request: posted.append(request.url) if request.method == "POST" else None)
        page.get_by_label("Customer ID").fill("C-1001")
        page.get_by_label("Customer ID").press("Tab")
        expect(page.get_by_label("Name")).to_have_value("Linda Park")
        expect(page.get_by_label("Tier")).to_have_value("gold")
        expect(page.get_by_role("region", name="Stored customer C-1001")).to_contain_text("None that you may see")
        fill_incident(page)
        axe_check(page, "the form")

        page.get_by_role("button", name="Get options").click()

        expect_options(page)
        option_b = page.get_by_role("region", name="Option b", exact=True)
        expect(option_b).to_contain_text("No approval needed")
        expect(option_b.locator("details")).not_to_have_attribute("open", "")
        option_b.get_by_role("button", name="Choose b", exact=True).click()
        expect(option_b.get_by_role("button", name="Choose b", exact=True)).to_have_attribute("aria-pressed", "true")
        expect(page.get_by_role("button", name="Choose a", exact=True)).to_have_attribute("aria-pressed", "false")
        expect(page.locator("#selected-choice")).to_contain_text("Selected: Option b")
        assert not [url for url in posted if "/outcome/" in url]  # choosing posts nothing
        axe_check(page, "the options")
        page.get_by_label("Satisfaction").fill("4")
        page.get_by_label("Notes").fill("Liked it")

        page.get_by_role("button", name="Record").dblclick()  # a double click records once

        expect(page.get_by_role("status")).to_contain_text("Recorded")
        expect(page.get_by_role("button", name="Choose a", exact=True)).to_be_disabled()  # nothing more to choose
        axe_check(page, "the recorded outcome")
        url = page.url

    assert url.endswith("/console/")  # no reload: the status came in a fragment
    assert len([url for url in posted if "/outcome/" in url]) == 1
    assert OutcomeSubmission.objects.count() == 1
    outcome = Outcome.objects.get()
    assert (outcome.choice, outcome.satisfaction, outcome.notes) == ("b", 4, "Liked it")


def test_the_customer_declines(console: Any) -> None:
    with console("agent-1") as page:
        fill_incident(page)
        page.get_by_role("button", name="Get options").click()
        expect_options(page)

        page.get_by_role("button", name="Customer declined").click()
        expect(page.get_by_role("button", name="Customer declined")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#selected-choice")).to_have_text(
            "Selected: The customer declined every option. Record to note that the customer declined."
        )
        page.get_by_role("button", name="Record").click()

        expect(page.get_by_role("status")).to_contain_text("Recorded")
        expect(page.get_by_role("status")).to_contain_text("The customer declined every option")

    outcome = Outcome.objects.get()
    assert (outcome.choice, outcome.accepted) == ("declined", False)


def test_a_validation_message_is_shown_at_its_field(console: Any) -> None:
    with console("agent-1") as page:
        fill_incident(page)
        page.get_by_label("Category").select_option("")
        page.get_by_label("Order value").fill("eighty")

        page.get_by_role("button", name="Get options").click()

        category = page.get_by_label("Category")
        expect(category).to_have_attribute("aria-invalid", "true")
        expect(category).to_have_accessible_description("This field is required.", ignore_case=False)
        expect(category).to_be_focused()  # the first field with a message
        order_value = page.get_by_label("Order value")
        expect(order_value).to_have_attribute("aria-invalid", "true")
        expect(order_value).to_have_accessible_description(
            f"In {settings.DEFAULT_CURRENCY}, for example 120.00. A valid number is required."
        )
        expect(order_value).to_have_value("eighty")
        expect(page.get_by_label("Customer ID")).not_to_have_attribute("aria-invalid", "true")
        expect(page.get_by_role("region", name="First, the fix")).to_have_count(0)

        category.select_option(label="damaged item")
        order_value.fill("80.00")
        page.get_by_role("button", name="Get options").click()
        expect_options(page)

    assert OfferSet.objects.count() == 1


def test_the_keys_enter_submits_and_b_chooses_but_not_while_typing(console: Any) -> None:
    with console("agent-1") as page:
        fill_incident(page)
        page.get_by_label("Order value").press("Enter")  # Enter submits the form

        expect_options(page)
        page.keyboard.press("b")
        expect(page.get_by_role("button", name="Choose b", exact=True)).to_have_attribute("aria-pressed", "true")
        page.get_by_label("Notes").fill("")
        page.get_by_label("Notes").press("a")  # typing in a field: a letter, not a choice
        page.get_by_label("Notes").press("d")
        expect(page.get_by_label("Notes")).to_have_value("ad")
        expect(page.get_by_role("button", name="Choose b", exact=True)).to_have_attribute("aria-pressed", "true")
        page.locator("#results-heading").focus()
        page.keyboard.press("Control+a")  # with a modifier: not a choice
        expect(page.get_by_role("button", name="Choose a", exact=True)).to_have_attribute("aria-pressed", "false")
        page.get_by_role("button", name="Record").click()

        expect(page.get_by_role("status")).to_contain_text("Recorded")

    outcome = Outcome.objects.get()
    assert (outcome.choice, outcome.notes) == ("b", "ad")


def test_enter_in_the_customer_id_fills_the_form_first_and_a_second_enter_gets_options(console: Any) -> None:
    Customer.objects.create(external_id="C-2002", name="Sam Lee", email="sam@example.com", tier="silver")
    with console("agent-1") as page:
        posted: list[str] = []
        asked: list[str] = []
        errors: list[str] = []
        page.on("request", lambda request: posted.append(request.url) if request.method == "POST" else None)
        page.on("request", lambda request: asked.append(request.url))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.reload()
        fill_incident(page, customer_id="")
        customer_id = page.get_by_label("Customer ID")
        customer_id.fill("C-2002")

        customer_id.press("Enter")  # the lookup, not the form

        expect(page.get_by_label("Name")).to_have_value("Sam Lee")
        expect(page.get_by_label("Tier")).to_have_value("silver")
        expect(page.get_by_role("region", name="Stored customer C-2002")).to_be_visible()
        expect(customer_id).to_be_focused()
        assert not [url for url in posted if "/options/" in url]

        customer_id.press("Enter")  # now it submits

        expect(page.get_by_role("heading", name="Options for Sam Lee")).to_be_visible()

    assert not errors  # htmx logged nothing (the lookup has no button to disable)
    assert not [url for url in asked if url.endswith("/favicon.ico")]  # the page names its icon

    assert OfferSet.objects.get().customer.external_id == "C-2002"


def test_an_option_above_the_agents_limit_ends_waiting_for_approval(console: Any) -> None:
    call_command("set_authority_limit", "trainees", "--per-option", "10.00", stdout=io.StringIO())
    with console("trainee-1", groups=(Group.objects.get(name="trainees"),)) as page:
        fill_incident(page)
        page.get_by_role("button", name="Get options").click()
        expect_options(page)
        option_a = page.get_by_role("region", name="Option a", exact=True)
        expect(option_a).to_contain_text("Needs a manager's approval")

        option_a.get_by_role("button", name="Choose a", exact=True).click()
        page.get_by_role("button", name="Record").click()

        expect(page.get_by_role("status")).to_contain_text("Waiting for approval")

    submission = OutcomeSubmission.objects.get()
    assert (submission.choice, submission.status) == ("a", OutcomeSubmission.Status.AWAITING_APPROVAL)
    assert submission.offer.estimated_cost > Decimal("10.00")
