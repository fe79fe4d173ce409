"""The policy admin in a real browser: the JavaScript widgets (the category chooser,
"Add another" offer and remedy), the save path an admin actually uses, a rejected
save shown again to correct, and the "Try the policies" page.

Runs Debian's Chromium headless through Playwright's sync API against
pytest-django's live server. Skipped locally when Chromium is missing; fails in CI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from policies.choices import OfferKind
from policies.models import Category, Policy
from policies.services import policy_version_record
from tests.factories import OfferTemplateFactory, PolicyFactory

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 10_000


@contextlib.contextmanager
def chromium_page(
    chromium_path: str, *, screenshot: Path | None = None, width: int = 1280, height: int = 900
) -> Iterator[Page]:
    """A page of headless Debian Chromium with the suite's step timeout; on a failure inside, a full-page
    screenshot to ``screenshot`` (a debugging aid); the browser closed in any case."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(STEP_TIMEOUT_MS)
        expect.set_options(timeout=STEP_TIMEOUT_MS)
        try:
            yield page
        except Exception:
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            raise
        finally:
            browser.close()


SCREENSHOT = Path("/tmp/admin_browser_failure.png")  # noqa: S108 - a debugging aid, overwritten each run


def _log_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{base_url}/admin/")


def _open_policy(page: Page, name: str) -> None:
    """From the changelist, open the policy's change page by its name."""
    page.locator("#result_list").get_by_role("link", name=name, exact=True).click()
    expect(page.locator("#content h2", has_text=name)).to_be_visible()


def _expect_versions(page: Page, numbers: list[int]) -> None:
    """The change page's read-only "Version history" lists these numbers, newest first."""
    group = page.locator("#versions-group")
    expect(group.locator("h2")).to_have_text("Version history")
    expect(group.locator("td.field-number")).to_have_text([str(n) for n in numbers])


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_creates_a_policy_with_two_offers_and_edits_it(
    chromium_path: str, live_server: Any, django_user_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    category = Category.objects.create(slug="late_delivery", name="late delivery")
    Category.objects.create(slug="damaged_item", name="damaged item")
    django_user_model.objects.create_superuser("policy-editor", "editor@example.com", "correct-horse-battery")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        expect.set_options(timeout=STEP_TIMEOUT_MS)
        try:
            _log_in(page, live_server.url, "policy-editor", "correct-horse-battery")

            page.goto(f"{live_server.url}/admin/policies/policy/add/")
            page.fill("#id_name", "Late delivery credit")
            page.fill("#id_slug", "late-delivery-credit")
            page.fill("#id_priority", "70")
            # filter_horizontal: pick in the "available" box, then the "choose" arrow moves it across.
            page.select_option("#id_categories_from", label=str(category))
            page.click("#id_categories_add")
            expect(page.locator("#id_categories_to option")).to_have_text([str(category)])

            page.select_option("#id_offers-0-kind", OfferKind.FIXED_CREDIT.value)
            page.fill("#id_offers-0-title", "{amount} {currency} credit")
            page.fill("#id_offers-0-value", "10")
            page.get_by_role("button", name="Add another Offer template").click()
            page.select_option("#id_offers-1-kind", OfferKind.PERCENT_DISCOUNT.value)
            page.fill("#id_offers-1-title", "{value}% off your next order")
            page.fill("#id_offers-1-value", "15")
            page.fill("#id_offers-1-max_amount", "30")
            page.locator("input[name=_save]").last.click()

            expect(page).to_have_url(f"{live_server.url}/admin/policies/policy/")
            expect(page.locator("ul.messagelist")).to_contain_text(
                "The policy “Late delivery credit” was added successfully."
            )
            _open_policy(page, "Late delivery credit")
            expect(page.locator("#id_categories_to option")).to_have_text([str(category)])
            expect(page.locator("#id_offers-1-max_amount")).to_have_value("30.00")
            _expect_versions(page, [1])

            page.fill("#id_priority", "80")
            page.locator("input[name=_save]").last.click()

            expect(page).to_have_url(f"{live_server.url}/admin/policies/policy/")
            expect(page.locator("ul.messagelist")).to_contain_text("Saved as version 2.")
            _open_policy(page, "Late delivery credit")
            expect(page.locator("#id_priority")).to_have_value("80")
            _expect_versions(page, [2, 1])
            expect(page.locator("#versions-group td.field-changes_list").first).to_have_text("Priority: 70 → 80")
        except Exception:
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            raise
        finally:
            browser.close()

    policy = Policy.objects.get(slug="late-delivery-credit")
    assert policy.priority == 80
    assert policy.version == 2
    assert list(policy.categories.values_list("slug", flat=True)) == ["late_delivery"]
    assert list(policy.offers.order_by("order", "pk").values_list("kind", "value", "max_amount")) == [
        (OfferKind.FIXED_CREDIT, Decimal("10.00"), None),
        (OfferKind.PERCENT_DISCOUNT, Decimal("15.00"), Decimal("30.00")),
    ]
    assert list(policy.versions.values_list("number", flat=True)) == [2, 1]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_adds_a_remedy_then_tries_the_policies(
    chromium_path: str, live_server: Any, django_user_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remedy added to a policy (a first save rejected and corrected), then the Try page: the remedy
    above the options, and the offers left out with their reasons."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    double_charge = Category.objects.create(slug="double_charge", name="double charge")
    policy = PolicyFactory(name="Double charge", slug="double-charge", priority=80, categories=[double_charge])
    for kind, value in [
        (OfferKind.FIXED_CREDIT, "10.00"),
        (OfferKind.FREE_SHIPPING, "9.95"),
        (OfferKind.GIFT, "20.00"),
        (OfferKind.EXPEDITED_REPLACEMENT, "12.00"),
    ]:
        OfferTemplateFactory(policy=policy, kind=kind, title=f"{kind} for you", value=Decimal(value))
    tight = PolicyFactory(
        name="Tight budget", slug="tight-budget", monthly_cap=Decimal("5.00"), categories=[double_charge]
    )
    OfferTemplateFactory(policy=tight, title="A {amount} {currency} sorry", value=Decimal("20.00"))
    for each in (policy, tight):
        policy_version_record(policy=each)
    django_user_model.objects.create_superuser("policy-editor", "editor@example.com", "correct-horse-battery")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        expect.set_options(timeout=STEP_TIMEOUT_MS)
        try:
            _log_in(page, live_server.url, "policy-editor", "correct-horse-battery")
            page.goto(f"{live_server.url}/admin/policies/policy/")
            _open_policy(page, "Double charge")
            remedies = page.locator("#remedies-group")
            expect(remedies.locator("h2")).to_have_text(
                "Remedy: what we put right first, whatever the customer chooses"
            )
            expect(remedies.locator(".description")).to_contain_text("Given once per incident")
            page.get_by_role("button", name="Add another Remedy").click()
            expect(page.locator("#id_remedies-0-kind option:not([value=''])")).to_have_count(5)
            page.select_option("#id_remedies-0-kind", OfferKind.REFUND.value)
            page.fill("#id_remedies-0-title", "Your {money} back")
            page.fill("#id_remedies-0-message", "{first_name}, I've refunded the full {money} to your card.")
            page.locator("input[name=_save]").last.click()

            # Rejected (a refund needs its percent): the form again with the error, the remedy kept to correct.
            expect(page.locator("p.errornote")).to_be_visible()
            expect(remedies.locator(".errorlist")).to_contain_text("is required for refund")
            expect(page.locator("#id_remedies-0-title")).to_have_value("Your {money} back")
            page.fill("#id_remedies-0-value", "100")
            page.locator("input[name=_save]").last.click()
            expect(page.locator("ul.messagelist")).to_contain_text("Saved as version 2.")

            page.get_by_role("link", name="Try the policies").click()
            page.select_option("#id_category", "double_charge")
            page.fill("#id_order_value", "120")
            page.get_by_role("button", name="Show the options").click()

            expect(page.get_by_role("heading", name="Put right first (remedy)")).to_be_visible()
            remedy_row = page.locator("#remedy-table tbody tr")
            expect(remedy_row).to_have_count(1)
            expect(remedy_row).to_contain_text("Your $120.00 back")
            expect(remedy_row).to_contain_text("Linda, I've refunded the full $120.00 to your card.")
            expect(page.locator("#option-table tbody tr")).to_have_count(3)
            dropped = page.locator("#offers-not-shown tbody tr")
            expect(dropped.filter(has_text="Double charge")).to_contain_text("ranked below the options shown")
            expect(dropped.filter(has_text="Tight budget")).to_contain_text(
                "monthly budget has 5.00 left, fixed_credit costs 20.00"
            )
            expect(page.locator("#not-offered")).to_contain_text("Tight budget")
        except Exception:
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            raise
        finally:
            browser.close()

    assert list(policy.remedies.values_list("kind", "value", "order")) == [(OfferKind.REFUND, Decimal("100.00"), 0)]
    assert list(policy.versions.values_list("number", flat=True)) == [2, 1]
