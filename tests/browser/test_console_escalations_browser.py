"""The managers' queue in a real browser: a manager logs in to the console, follows "Escalations", approves an
agent's choice that was above the agent's authority and resolves a senior-manager escalation (an empty
"Resolution" first, shown at its field), each seen done without a reload; axe-core finds no serious or critical
violation on the queue, before and after.

axe-core is the npm package's file, vendored into the test run (tests/browser/vendor/, with its licence) and
injected by Playwright, never served by the app. Runs Debian's Chromium headless through Playwright's sync API
against pytest-django's live server. Skipped locally when Chromium is missing; fails in CI.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from compensation.models import Customer, Escalation, Incident, OutcomeSubmission
from compensation.serializers import offer_set_input_validate
from compensation.services.escalations import escalation_open_for_incident
from compensation.services.offer_sets import offer_set_create
from compensation.services.outcomes import outcome_submit
from compensation.services.users import user_token_issue
from policies.choices import OfferKind
from policies.index import policy_index_get
from tests.browser.test_admin_browser import chromium_page
from tests.browser.test_console_browser import axe_check
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

SCREENSHOT = Path("/tmp/console_escalations_browser_failure.png")  # noqa: S108 - a debugging aid, overwritten each run


def approval_above_authority() -> Escalation:
    """Through the services: a trainee agent, whose limit per option is 30.00 (``set_authority_limit``), chooses
    free shipping costing 40.00 for a gold customer's late delivery; the choice waits for a manager."""
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    policy = PolicyFactory(name="Goodwill", categories=[category])
    OfferTemplateFactory(
        policy=policy,
        kind=OfferKind.FREE_SHIPPING,
        title="Free shipping",
        value=Decimal("9.00"),
        cost=Decimal("40.00"),
        order=0,
    )
    OfferTemplateFactory(
        policy=policy, kind=OfferKind.GIFT, title="A gift", value=Decimal("25.00"), cost=Decimal("20.00"), order=1
    )
    call_command("set_authority_limit", "trainees", "--per-option", "30", stdout=io.StringIO())
    agent, _, _ = user_token_issue(username="agent-1", role="agent")
    agent.groups.add(Group.objects.get(name="trainees"))
    agent = type(agent).objects.get(pk=agent.pk)
    index = policy_index_get()
    data = offer_set_input_validate(
        {
            "customer": {"external_id": "C-7", "name": "Grace Hopper", "tier": "gold"},
            "incident": {
                "category": "late_delivery",
                "severity": 3,
                "order_value": "80.00",
                "external_ref": "T-7",
                "description": "The parcel came nine days late.",
            },
        },
        index=index,
    )
    made = offer_set_create(
        user=agent, index=index, customer=data["customer"], incident=data["incident"], now=timezone.now()
    )
    shipping = next(o for o in made.offers if o.kind == OfferKind.FREE_SHIPPING)
    assert shipping.requires_approval
    submission = outcome_submit(user=agent, offer_set_id=made.offer_set.pk, choice=shipping.label, now=timezone.now())
    assert submission.status == OutcomeSubmission.Status.AWAITING_APPROVAL
    return Escalation.objects.get(kind=Escalation.Kind.APPROVAL)


def senior_manager_overdue() -> Escalation:
    """A senior-manager escalation opened by the service three hours ago, with its SLA now past."""
    category = CategoryFactory(slug="missed_appointment", name="missed appointment")
    customer = Customer.objects.create(external_id="C-9", name="Ada Lovelace", tier="platinum")
    now = timezone.now()
    incident = Incident.objects.create(
        customer=customer,
        category=category,
        severity=5,
        correctable=False,
        currency="USD",
        description="The engineer never came.",
        occurred_at=now - timedelta(hours=6),
    )
    escalation, _ = escalation_open_for_incident(
        incident=incident, customer=customer, reason="Severity 5, not correctable", policy_id=None, now=now
    )
    Escalation.objects.filter(pk=escalation.pk).update(due_at=now - timedelta(hours=1, minutes=5))
    return escalation


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_manager_approves_and_resolves_in_the_queue_without_a_reload(
    chromium_path: str, live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    approval = approval_above_authority()
    senior = senior_manager_overdue()
    manager, _, _ = user_token_issue(username="manager-1", role="manager")
    manager.set_password("correct-horse-battery")
    manager.save()

    with chromium_page(chromium_path, screenshot=SCREENSHOT) as page:
        page.goto(f"{live_server.url}/console/login/")
        page.get_by_label("Username").fill("manager-1")
        page.get_by_label("Password").fill("correct-horse-battery")
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{live_server.url}/console/")
        page.wait_for_load_state()  # the URL commits before htmx starts: typing sooner fires no request
        page.get_by_role("navigation", name="Console").get_by_role("link", name="Escalations").click()
        expect(page).to_have_url(f"{live_server.url}/console/escalations/")
        expect(page.get_by_role("heading", name="Open escalations", level=1)).to_be_visible()
        axe_check(page, "the queue")

        # Soonest due first: the overdue one leads, and says so in words.
        cards = page.get_by_role("article")
        expect(cards).to_have_count(2)
        first = page.get_by_role("article", name=f"Escalation #{senior.pk}: senior manager, missed appointment")
        second = page.get_by_role("article", name=f"Escalation #{approval.pk}: approval, late delivery")
        expect(cards.nth(0)).to_have_id(f"escalation-{senior.pk}")
        expect(first).to_contain_text("Overdue")
        expect(first).to_contain_text(re.compile(r"Overdue by 1 h \d+ min"))
        expect(second).not_to_contain_text("Overdue")
        expect(second).to_contain_text(re.compile(r"Due in 3 h 5\d min"))
        expect(second).to_contain_text("Chosen, waiting for this approval")
        expect(second.get_by_role("button", name="Resolve")).to_have_count(0)
        page.evaluate("window.stillThisPage = true")  # gone if the page reloads

        second.get_by_role("button", name="Approve").click()
        status = page.get_by_role("status")
        expect(status).to_have_text(
            f"Escalation #{approval.pk} approved: what waited for it goes ahead. It has left the open list."
        )
        expect(second).to_have_count(0)
        expect(page.locator("#queue-count")).to_have_text("1 open escalation, soonest due first; 1 overdue.")

        first.get_by_role("button", name="Resolve").click()
        resolution = first.get_by_label("Resolution")
        expect(resolution).to_have_attribute("aria-invalid", "true")
        expect(resolution).to_have_accessible_description("This field may not be blank.")
        expect(resolution).to_be_focused()
        expect(status).to_contain_text(f"Escalation #{senior.pk} not resolved")
        axe_check(page, "the queue after the actions")

        resolution.fill("Called Ada; the engineer comes tomorrow at 9.")
        first.get_by_role("button", name="Resolve").click()
        expect(status).to_have_text(f"Escalation #{senior.pk} resolved. It has left the open list.")
        expect(page.get_by_role("article")).to_have_count(0)
        expect(page.get_by_role("heading", name="Open escalations", level=1)).to_be_focused()
        assert page.evaluate("window.stillThisPage") is True
        page.screenshot(path="/tmp/console_escalations_browser.png", full_page=True)  # noqa: S108

    approval.refresh_from_db()
    senior.refresh_from_db()
    assert (approval.status, approval.assigned_to, approval.resolution) == ("approved", manager, "Approved.")
    assert OutcomeSubmission.objects.get().status == OutcomeSubmission.Status.RECORDED
    assert (senior.status, senior.resolution) == ("resolved", "Called Ada; the engineer comes tomorrow at 9.")
