"""The agents' page of the console (API.md, "The console"), through Django's test client: who may use it, the
same rules as the REST API (an agent sees only their own sets, a double click records once, validation messages
at their fields, budgets and approvals), the exact-ID customer lookup, CSRF and the login lockout."""

from __future__ import annotations

import html
import io
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from compensation.models import Customer, Incident, Offer, OfferSet, Outcome, OutcomeSubmission, Remedy
from compensation.services.escalations import escalation_approve, escalation_reject

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-console-password-7"
HTMX = {"HTTP_HX_REQUEST": "true"}

# A gold customer's damaged item: the demo pack gives a remedy (the right item, shipped express) and three
# options of 15.00 to 20.00, none above the default approval limit of 100.00.
INCIDENT = {
    "customer_id": "C-1001",
    "name": "Linda Park",
    "email": "linda@example.com",
    "tier": "gold",
    "lifetime_value": "5400.00",
    "interests": "sports, cooking",
    "category": "damaged_item",
    "severity": "3",
    "fault": "company",
    "correctable": "on",
    "order_value": "80.00",
    "ticket": "TCK-42",
    "description": "The vase arrived in pieces",
}


def options(client: Client, **changes: str) -> Any:
    return client.post("/console/options/", {**INCIDENT, **changes}, **HTMX)


def new_set(client: Client, **changes: str) -> OfferSet:
    response = options(client, **changes)
    assert response.status_code == 200, response.content.decode()
    return OfferSet.objects.filter(created_by=client.user).latest("created_at")


@pytest.fixture(autouse=True)
def _commits(django_capture_on_commit_callbacks: Any) -> None:
    """The test's transaction never commits: run the on_commit callbacks (the recording task, eager here) as a
    commit would, after each request."""
    global _capture
    _capture = django_capture_on_commit_callbacks


_capture: Any = None


def record(client: Client, offer_set: OfferSet, choice: str, **fields: str) -> Any:
    """Post the choice (as Record does); the recording task runs at the commit, after the answer."""
    with _capture(execute=True):
        return client.post(f"/console/offer-sets/{offer_set.pk}/outcome/", {"choice": choice, **fields}, **HTMX)


def status(client: Client, offer_set: OfferSet) -> Any:
    """What the polling asks for."""
    return client.get(f"/console/offer-sets/{offer_set.pk}/status/", **HTMX)


def text(response: Any) -> str:
    """The page's words, tags removed and spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


# --- Who may use it ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["analyst", "integration"])
def test_analysts_and_the_integration_get_403_everywhere_on_the_agents_page(
    browser_for: Any, agent: Client, demo_pack: None, role: str
) -> None:
    offer_set = new_set(agent)
    other = browser_for(role)

    answers = [
        other.get("/console/"),
        other.post("/console/options/", INCIDENT),
        other.get("/console/customer/", {"customer_id": "C-1001"}),
        other.get(f"/console/offer-sets/{offer_set.pk}/"),
        other.post(f"/console/offer-sets/{offer_set.pk}/outcome/", {"choice": "a"}),
        other.get(f"/console/offer-sets/{offer_set.pk}/status/"),
    ]

    assert [answer.status_code for answer in answers] == [403] * 6
    assert OfferSet.objects.count() == 1
    assert not OutcomeSubmission.objects.exists()


def test_anonymous_users_are_sent_to_the_console_login(db: None) -> None:
    response = Client().get("/console/")

    assert response.status_code == 302
    assert response["Location"] == "/console/login/?next=/console/"


def test_an_anonymous_fragment_request_sends_the_whole_page_to_the_login(db: None) -> None:
    """A session that expired under the page: logging in leads back to the page the fragment was asked from,
    never to the fragment itself (bare HTML) or a POST-only address (a 405)."""
    page = "/console/offer-sets/1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed/"
    on_a_set = {**HTMX, "HTTP_HX_CURRENT_URL": f"http://testserver{page}"}

    poll = Client().get(f"{page}status/", **on_a_set)
    record = Client().post(f"{page}outcome/", {"choice": "a"}, **HTMX)
    elsewhere = Client().get("/console/customer/", HTTP_HX_CURRENT_URL="https://evil.example/x", **HTMX)
    plain_post = Client().post("/console/options/", INCIDENT)

    assert poll.status_code == 204
    assert poll["HX-Redirect"] == f"/console/login/?next={page}"
    assert record["HX-Redirect"] == "/console/login/?next=/console/"  # no page named: the console
    assert elsewhere["HX-Redirect"] == "/console/login/?next=/console/"  # another origin is not followed
    assert plain_post.status_code == 302
    assert plain_post["Location"] == "/console/login/?next=/console/"


def test_the_form_names_its_fields_as_the_api_doc_does_and_lists_active_categories(
    agent: Client, demo_pack: None
) -> None:
    from policies.models import Category

    Category.objects.filter(slug="out_of_stock").update(active=False)
    page = agent.get("/console/").content.decode()

    for label in ("Customer ID", "Name", "E-mail", "Tier", "Lifetime value", "Interests", "Category", "Severity"):
        assert re.search(rf'<label for="id_\w+">{label}</label>', page), label
    for label in ("Fault", "Correctable", "Order value", "Ticket", "What happened"):
        assert re.search(rf'<label for="id_\w+">{label}</label>', page), label
    assert '<option value="damaged_item">damaged item</option>' in page
    assert '<option value="customer_error">order mix-up</option>' in page
    assert 'value="out_of_stock"' not in page
    assert '<button type="submit">Get options</button>' in page


def test_the_page_has_an_icon_a_short_tier_choice_and_a_lookup_that_disables_nothing(
    agent: Client, demo_pack: None
) -> None:
    from django.contrib.staticfiles import finders

    page = agent.get("/console/").content.decode()
    landing = Client().get("/").content.decode()

    icon = '<link rel="icon" href="/static/console/favicon.svg" type="image/svg+xml">'
    assert icon in page
    assert icon in landing
    assert finders.find("console/favicon.svg")
    tier = re.search(r'<input[^>]*id="id_tier"[^>]*>', page).group(0)
    assert 'placeholder="as stored"' in tier
    assert "empty: as stored (standard for a new customer)." in page
    lookup = re.search(r'<input[^>]*id="id_customer_id"[^>]*>', page).group(0)
    assert 'hx-disabled-elt="unset"' in lookup  # the form's "find button" does not apply to the input


# --- Options ------------------------------------------------------------------------------------


def test_get_options_creates_the_set_as_the_api_would_and_shows_the_fix_first(agent: Client, demo_pack: None) -> None:
    response = options(agent)

    assert response.status_code == 200
    offer_set = OfferSet.objects.get()
    assert offer_set.created_by == agent.user
    assert offer_set.incident.external_ref == "TCK-42"
    assert offer_set.incident.description == "The vase arrived in pieces"
    assert offer_set.incident.category.slug == "damaged_item"
    customer = Customer.objects.get(external_id="C-1001")
    assert (customer.name, customer.email, customer.tier, customer.interests) == (
        "Linda Park",
        "linda@example.com",
        "gold",
        ["sports", "cooking"],
    )
    page = response.content.decode()
    words = text(response)
    assert page.index("First, the fix") < page.index("Option a")
    assert "The right item, shipped express today" in words
    for offer in Offer.objects.filter(offer_set=offer_set):
        assert f">Option {offer.label}</h3>" in page
        assert offer.title in words
        assert f">Choose {offer.label}</button>" in page
        assert "No approval needed." in words
    assert "Customer declined" in words
    assert 'id="results-heading" tabindex="-1" data-autofocus' in page


def test_an_unchecked_correctable_and_a_fault_are_posted_as_such(agent: Client, demo_pack: None) -> None:
    data = {**INCIDENT, "fault": "customer"}
    del data["correctable"]
    agent.post("/console/options/", data, **HTMX)

    incident = OfferSet.objects.get().incident
    assert (incident.fault, incident.correctable) == ("customer", False)


def test_each_validation_message_is_shown_at_its_field_and_nothing_is_created(agent: Client, demo_pack: None) -> None:
    response = options(agent, category="", order_value="twelve", email="not-an-address", interests="sports, two words")

    assert response.status_code == 400
    assert response["HX-Retarget"] == "#incident-form"
    assert response["HX-Reswap"] == "outerHTML"
    page = response.content.decode()
    for field, message in [
        ("category", "This field is required."),
        ("order_value", "A valid number is required."),
        ("email", "Enter a valid email address."),
        ("interests", "Interest 2: Enter a valid"),
    ]:
        tag = re.search(rf'<(?:input|select)[^>]*id="id_{field}"[^>]*>', page).group(0)
        assert 'aria-invalid="true"' in tag, field
        assert f'id_{field}-error"' in tag, field
        errors = re.search(rf'<ul class="errorlist" id="id_{field}-error">(.*?)</ul>', page, re.S).group(1)
        assert message in errors, field
    assert "data-autofocus" in re.search(r'<input[^>]*id="id_email"[^>]*>', page).group(0)  # the first, in order
    assert 'value="twelve"' in page  # what was typed stays
    assert 'id="results" hx-swap-oob="innerHTML"' in page  # old options are cleared
    assert not OfferSet.objects.exists()
    assert not Customer.objects.exists()


def test_an_unknown_category_says_which_are_valid_at_the_category(agent: Client, demo_pack: None) -> None:
    response = options(agent, category="lost_parcel", severity="9")

    assert response.status_code == 400
    page = response.content.decode()
    category_errors = re.search(r'id="id_category-error">(.*?)</ul>', page, re.S).group(1)
    assert "unknown or inactive category &#x27;lost_parcel&#x27;" in category_errors
    assert "damaged_item" in category_errors
    severity_errors = re.search(r'id="id_severity-error">(.*?)</ul>', page, re.S).group(1)
    assert "Ensure this value is less than or equal to 5." in severity_errors


def form_key(response: Any) -> str:
    return re.search(r'<input type="hidden" name="form_key" value="([^"]+)">', response.content.decode()).group(1)


def test_the_same_form_key_and_values_again_show_the_same_set_and_make_nothing_new(
    agent: Client, demo_pack: None
) -> None:
    key = form_key(agent.get("/console/"))

    first = options(agent, form_key=key, ticket="")  # no ticket: a new incident each time it is made
    again = options(agent, form_key=key, ticket="")

    assert (first.status_code, again.status_code) == (200, 200)
    assert Incident.objects.count() == 1
    offer_set = OfferSet.objects.get()
    assert "Same request as before: these are the options already given." in text(again)
    assert "Same request as before" not in text(first)
    assert str(offer_set.pk) in again.content.decode()  # its own page's link: the same set
    assert "Problem number" not in text(again)  # not a repeat case
    assert form_key(first) == form_key(again) == key  # the form keeps its key


def test_the_same_form_key_and_values_after_the_set_expired_ask_anew(agent: Client, demo_pack: None) -> None:
    """Replaying an expired set would leave the agent nothing to record: asking again after expiry is new."""
    key = form_key(agent.get("/console/"))
    with time_machine.travel(timezone.now(), tick=False) as clock:
        first = options(agent, form_key=key, ticket="")
        clock.shift(timedelta(minutes=61))  # past the 60-minute life of an offer set (OFFER_SET_TTL_MINUTES)
        again = options(agent, form_key=key, ticket="")

    assert first.status_code == again.status_code == 200
    assert OfferSet.objects.count() == 2
    assert "Same request as before" not in text(again)
    assert form_key(again) != key


def test_changed_values_with_the_same_form_key_make_a_new_set_and_a_new_key(agent: Client, demo_pack: None) -> None:
    key = form_key(agent.get("/console/"))
    options(agent, form_key=key)

    changed = options(agent, form_key=key, ticket="TCK-43", order_value="90.00")

    assert changed.status_code == 200
    assert OfferSet.objects.count() == 2
    assert Incident.objects.count() == 2
    assert "Same request as before" not in text(changed)
    new_key = form_key(changed)
    assert new_key != key
    options(agent, form_key=new_key, ticket="TCK-43", order_value="90.00")  # asked again: the second set
    assert OfferSet.objects.count() == 2


def test_a_form_key_that_is_not_a_uuid_is_replaced_and_the_set_is_made(agent: Client, demo_pack: None) -> None:
    response = options(agent, form_key="not a key\x00")

    assert response.status_code == 200
    assert OfferSet.objects.count() == 1
    assert form_key(response) != "not a key"


def test_the_same_ticket_with_changed_values_says_its_recorded_incident_is_used(agent: Client, demo_pack: None) -> None:
    first = options(agent)
    same = options(agent)  # no form key: a second set for the same ticket, nothing changed

    changed = options(agent, severity="5", order_value="120.00", description="Two vases, both broken")

    assert changed.status_code == 200
    assert Incident.objects.count() == 1
    assert OfferSet.objects.count() == 3
    assert (
        "Ticket TCK-42 is an incident already recorded (damaged item, severity 3, order value $80.00): "
        "these options are for it; your changes to it were not used."
    ) in text(changed)
    assert "already recorded" not in text(first)
    assert "already recorded" not in text(same)


def test_tier_severity_and_fault_are_typed_and_a_typed_choice_may_have_any_case(agent: Client, demo_pack: None) -> None:
    page = agent.get("/console/").content.decode()
    for name in ("tier", "severity", "fault"):
        assert re.search(rf'<input[^>]*id="id_{name}"', page), name  # typed (API.md: only Category is a select)

    response = options(agent, tier=" Gold", fault="Company", severity="4")

    assert response.status_code == 200, text(response)
    offer_set = OfferSet.objects.get()
    assert (offer_set.customer.tier, offer_set.incident.fault, offer_set.incident.severity) == ("gold", "company", 4)


def test_an_incident_without_a_remedy_still_has_its_fix_region_saying_so(agent: Client, demo_pack: None) -> None:
    """The demo pack gives a late delivery no remedy: "First, the fix" is there all the same, in words."""
    response = options(agent, category="late_delivery")

    assert response.status_code == 200
    page = text(response)
    assert "First, the fix Nothing to put right first for this incident" in page
    assert page.index("First, the fix") < page.index("Option a")
    assert 'id="fix-state"' not in response.content.decode()


def test_without_htmx_the_whole_page_comes_back(agent: Client, demo_pack: None) -> None:
    response = agent.post("/console/options/", INCIDENT)

    assert response.status_code == 200
    assert "<h1>" in response.content.decode()
    assert "First, the fix" in text(response)


# --- The stored customer -----------------------------------------------------------------------


def test_an_exact_customer_id_fills_the_form_and_lists_only_the_agents_own_sets(
    agent: Client, browser_for: Any, demo_pack: None
) -> None:
    mine = new_set(agent)
    other_agent = browser_for("agent", "agent-2")
    theirs = new_set(other_agent)
    manager = browser_for("manager", "manager-1")

    response = agent.get("/console/customer/", {"customer_id": "C-1001"}, **HTMX)

    page = response.content.decode()
    fill = re.search(r'<script id="customer-fill" type="application/json">(.*?)</script>', page).group(1)
    assert '"name": "Linda Park"' in fill
    assert '"email": "linda@example.com"' in fill
    assert '"tier": "gold"' in fill
    assert '"interests": "sports, cooking"' in fill
    assert f"/console/offer-sets/{mine.pk}/" in page
    assert f"/console/offer-sets/{theirs.pk}/" not in page
    managers_page = manager.get("/console/customer/", {"customer_id": "C-1001"}).content.decode()
    assert f"/console/offer-sets/{mine.pk}/" in managers_page
    assert f"/console/offer-sets/{theirs.pk}/" in managers_page


@pytest.mark.parametrize("typed", ["C-100", "C-10011", "c-1001", "1001", "linda@example.com", "Linda Park", "%", ""])
def test_no_customer_is_found_by_a_partial_id_or_an_email(agent: Client, demo_pack: None, typed: str) -> None:
    new_set(agent)

    response = agent.get("/console/customer/", {"customer_id": typed}, **HTMX)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Linda" not in page
    assert "linda@" not in page
    assert "customer-fill" not in page
    assert "/console/offer-sets/" not in page


# --- Another agent's set -------------------------------------------------------------------------


def test_another_agents_offer_set_is_not_reachable_by_url(agent: Client, browser_for: Any, demo_pack: None) -> None:
    offer_set = new_set(agent)
    other = browser_for("agent", "agent-2")
    manager = browser_for("manager", "manager-1")

    assert other.get(f"/console/offer-sets/{offer_set.pk}/").status_code == 404
    assert status(other, offer_set).status_code == 404
    assert record(other, offer_set, "a").status_code == 404
    assert record(other, offer_set, "").status_code == 404
    assert not OutcomeSubmission.objects.exists()
    page = agent.get(f"/console/offer-sets/{offer_set.pk}/")
    assert page.status_code == 200
    assert "Option a" in text(page)
    assert manager.get(f"/console/offer-sets/{offer_set.pk}/").status_code == 200


# --- Recording ------------------------------------------------------------------------------------


def test_a_choice_is_recorded_with_its_satisfaction_and_notes(agent: Client, demo_pack: None) -> None:
    offer_set = new_set(agent)

    response = record(agent, offer_set, "b", satisfaction="4", notes="Liked the discount")

    assert response.status_code == 200
    assert "Accepted, being recorded" in text(response)
    assert 'hx-trigger="every 1s"' in response.content.decode()  # the status is asked for again at once
    assert 'id="record-form"' not in response.content.decode()  # accepted: nothing more to post
    assert "Satisfaction 4 of 5. Notes: Liked the discount" in text(response)
    polled = status(agent, offer_set)
    assert "Recorded" in text(polled)
    assert "Satisfaction 4 of 5. Notes: Liked the discount" in text(polled)  # what was posted, shown back
    assert "hx-trigger" not in polled.content.decode()  # final: no more polling
    outcome = Outcome.objects.get()
    assert (outcome.offer_set_id, outcome.choice, outcome.satisfaction, outcome.notes) == (
        offer_set.pk,
        "b",
        4,
        "Liked the discount",
    )


def test_on_the_agents_page_the_recent_offer_sets_follow_the_status(agent: Client, demo_pack: None) -> None:
    offer_set = new_set(agent)
    on_home = {**HTMX, "HTTP_HX_CURRENT_URL": "http://testserver/console/"}
    on_its_page = {**HTMX, "HTTP_HX_CURRENT_URL": f"http://testserver/console/offer-sets/{offer_set.pk}/"}

    with _capture(execute=True):
        recorded = agent.post(f"/console/offer-sets/{offer_set.pk}/outcome/", {"choice": "b"}, **on_home)
    polled = agent.get(f"/console/offer-sets/{offer_set.pk}/status/", **on_home)
    elsewhere = agent.get(f"/console/offer-sets/{offer_set.pk}/status/", **on_its_page)

    panel = '<div id="customer-panel" hx-swap-oob="innerHTML">'
    assert panel in recorded.content.decode()
    assert "(option b: accepted, being recorded)" in text(recorded)
    assert panel in polled.content.decode()
    assert "(option b: recorded)" in text(polled)
    assert "no outcome yet" not in text(polled)
    assert panel not in elsewhere.content.decode()  # no panel there to refresh


def test_a_double_click_records_once_and_another_choice_after_it_is_refused(agent: Client, demo_pack: None) -> None:
    offer_set = new_set(agent)

    first = record(agent, offer_set, "b")
    second = record(agent, offer_set, "b")
    third = record(agent, offer_set, "a")

    assert (first.status_code, second.status_code) == (200, 200)
    assert OutcomeSubmission.objects.count() == 1
    assert Outcome.objects.count() == 1
    assert "Recorded" in text(second)  # the first was recorded meanwhile
    assert third.status_code == 409
    assert "already has an outcome" in text(third)
    assert Outcome.objects.get().choice == "b"


def test_declined_is_recorded(agent: Client, demo_pack: None) -> None:
    offer_set = new_set(agent)

    record(agent, offer_set, "declined")

    polled = text(status(agent, offer_set))
    assert "Recorded" in polled
    assert "declined every option" in polled
    assert Outcome.objects.get().accepted is False


def test_record_without_a_choice_or_with_a_bad_satisfaction_says_so_and_records_nothing(
    agent: Client, demo_pack: None
) -> None:
    offer_set = new_set(agent)

    no_choice = record(agent, offer_set, "")
    bad = record(agent, offer_set, "b", satisfaction="9")
    no_such = record(agent, offer_set, "e")

    assert (no_choice.status_code, bad.status_code, no_such.status_code) == (400, 400, 400)
    assert "Choose an option (a, b, c) or Customer declined first." in text(no_choice)
    assert "Ensure this value is less than or equal to 5." in text(bad)
    satisfaction = re.search(r'<input[^>]*id="id_satisfaction"[^>]*>', bad.content.decode()).group(0)
    assert 'aria-invalid="true"' in satisfaction
    assert 'aria-describedby="id_satisfaction-hint id_satisfaction-error"' in satisfaction
    assert 'value="9"' in satisfaction  # kept, to be corrected
    assert "is not an option of this offer set" in text(no_such)
    assert not OutcomeSubmission.objects.exists()


def test_an_expired_set_shows_so_and_refuses_a_choice(agent: Client, demo_pack: None) -> None:
    offer_set = new_set(agent)

    with time_machine.travel(offer_set.expires_at + timedelta(minutes=1)):
        page = agent.get(f"/console/offer-sets/{offer_set.pk}/")
        refused = record(agent, offer_set, "a")

    assert 'id="record-form"' not in page.content.decode()
    assert "expired" in text(page)
    assert refused.status_code == 409
    assert "expired" in text(refused)
    assert not OutcomeSubmission.objects.exists()


def limited_agent(browser_for: Any, per_option: str) -> Client:
    """An agent whose group lets them give at most ``per_option`` per option without approval."""
    call_command("set_authority_limit", "trainees", "--per-option", per_option, stdout=io.StringIO())
    client = browser_for("agent", "trainee-1")
    client.user.groups.add(Group.objects.get(name="trainees"))
    return client


def test_an_option_over_the_agents_limit_waits_for_approval_then_is_recorded(browser_for: Any, demo_pack: None) -> None:
    agent = limited_agent(browser_for, "10.00")
    manager = browser_for("manager", "manager-1")
    response = options(agent)
    assert text(response).count("Needs a manager's approval") >= 3  # each option costs 15.00 or more
    offer_set = OfferSet.objects.get()

    waiting = record(agent, offer_set, "b")

    assert "Waiting for approval" in text(waiting)
    assert 'hx-trigger="every 5s"' in waiting.content.decode()  # it keeps asking, now and then
    submission = OutcomeSubmission.objects.get()
    assert submission.status == OutcomeSubmission.Status.AWAITING_APPROVAL
    with _capture(execute=True):
        escalation_approve(escalation_id=submission.approval_id, user=manager.user)
    fix = Remedy.objects.get(incident=offer_set.incident)  # the fix, over the limit too, waits apart
    escalation_approve(escalation_id=fix.approval_id, user=manager.user)

    polled = status(agent, offer_set)

    assert "Recorded" in text(polled)
    assert "The fix was given." in text(polled)
    assert "hx-trigger" not in polled.content.decode()


def test_a_refused_approval_says_why_and_lets_the_agent_choose_again(browser_for: Any, demo_pack: None) -> None:
    agent = limited_agent(browser_for, "10.00")
    manager = browser_for("manager", "manager-1")
    offer_set = new_set(agent)
    record(agent, offer_set, "a")
    submission = OutcomeSubmission.objects.get()
    escalation_reject(escalation_id=submission.approval_id, user=manager.user, reason="Too generous for a vase")

    polled = status(agent, offer_set)

    assert "Rejected by a manager" in text(polled)
    assert "Too generous for a vase" in text(polled)
    assert 'id="record-form"' in polled.content.decode()
    record(agent, offer_set, "declined")
    assert "Recorded" in text(status(agent, offer_set))


def test_a_fix_over_the_agents_limit_says_it_waits_for_a_manager_until_it_is_given(
    browser_for: Any, demo_pack: None
) -> None:
    agent = limited_agent(browser_for, "10.00")
    manager = browser_for("manager", "manager-1")
    offer_set = new_set(agent)

    recorded = record(agent, offer_set, "declined")  # declining needs no approval; the fix still does
    polled = status(agent, offer_set)

    assert "The fix is given once the choice is recorded." in text(recorded)  # it is recorded after the answer
    assert "Recorded" in text(polled)
    assert "The fix waits for a manager's approval." in text(polled)
    assert 'hx-trigger="every 5s"' in polled.content.decode()  # asked for again until the fix is decided
    assert 'id="fix-state" class="fix-state fix-awaiting_approval" hx-swap-oob="true"' in polled.content.decode()
    page = agent.get(f"/console/offer-sets/{offer_set.pk}/")
    assert "The fix waits for a manager's approval." in text(page)
    remedy = Remedy.objects.get(incident=offer_set.incident)
    assert remedy.status == Remedy.Status.AWAITING_APPROVAL
    with _capture(execute=True):
        escalation_approve(escalation_id=remedy.approval_id, user=manager.user)

    given = status(agent, offer_set)

    assert "The fix was given." in text(given)
    assert "hx-trigger" not in given.content.decode()  # final: no more polling


def test_a_refused_fix_says_so(browser_for: Any, demo_pack: None) -> None:
    agent = limited_agent(browser_for, "10.00")
    manager = browser_for("manager", "manager-1")
    offer_set = new_set(agent)
    record(agent, offer_set, "declined")
    remedy = Remedy.objects.get(incident=offer_set.incident)
    escalation_reject(escalation_id=remedy.approval_id, user=manager.user, reason="Not our fault")

    polled = status(agent, offer_set)

    assert "The fix was refused by a manager." in text(polled)
    assert "hx-trigger" not in polled.content.decode()


def test_a_fix_within_the_agents_limit_says_it_was_given(agent: Client, demo_pack: None) -> None:
    offer_set = new_set(agent)

    record(agent, offer_set, "a")

    assert "The fix was given." in text(status(agent, offer_set))


# --- CSRF and the lockout -----------------------------------------------------------------------------


def test_csrf_applies_to_the_console(make_user: Any, demo_pack: None) -> None:
    user, _ = make_user("agent-1", "agent")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/console/")
    token = browser.cookies["csrftoken"].value

    refused = browser.post("/console/options/", INCIDENT, **HTMX)
    wrong = browser.post("/console/options/", INCIDENT, HTTP_X_CSRFTOKEN="x" * 32, **HTMX)
    accepted = browser.post("/console/options/", INCIDENT, HTTP_X_CSRFTOKEN=token, **HTMX)

    assert (refused.status_code, wrong.status_code, accepted.status_code) == (403, 403, 200)
    assert OfferSet.objects.count() == 1
    offer_set = OfferSet.objects.get()
    assert browser.post(f"/console/offer-sets/{offer_set.pk}/outcome/", {"choice": "a"}).status_code == 403
    assert not OutcomeSubmission.objects.exists()


def test_the_page_sends_the_csrf_token_with_every_htmx_request(agent: Client, demo_pack: None) -> None:
    page = agent.get("/console/").content.decode()

    assert re.search(r"hx-headers='\{\"X-CSRFToken\": \"\w+\"\}'", page)


def console_login(username: str, password: str) -> tuple[Any, bool]:
    browser = Client(enforce_csrf_checks=True, REMOTE_ADDR="198.51.100.7")
    browser.get("/console/login/")
    response = browser.post(
        "/console/login/",
        {"username": username, "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"].value},
    )
    return response, browser.get("/console/").status_code == 200


def test_five_wrong_passwords_lock_the_console_login_out(make_user: Any) -> None:
    user, _ = make_user("agent-1", "agent")
    user.set_password(PASSWORD)
    user.save()
    with time_machine.travel(timezone.now(), tick=False):
        response, logged_in = console_login("agent-1", PASSWORD)
        assert response.status_code == 302
        assert logged_in
        for _ in range(5):
            response, logged_in = console_login("agent-1", "wrong")
            assert response.status_code in {200, 429}
            assert not logged_in

        response, logged_in = console_login("agent-1", PASSWORD)

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert not logged_in


def test_a_budget_spent_since_the_options_were_shown_is_refused_in_the_apis_words(
    agent: Client, demo_pack: None
) -> None:
    from policies.models import Policy

    offer_set = new_set(agent)
    chosen = Offer.objects.get(offer_set=offer_set, label="b")
    Policy.objects.filter(pk=chosen.policy_id).update(monthly_cap=chosen.estimated_cost - 1)

    response = record(agent, offer_set, "b")

    assert response.status_code == 409
    assert "budget" in text(response).lower()
    assert 'id="record-form"' in response.content.decode()  # the agent may choose another option
    assert not OutcomeSubmission.objects.exists()


def test_a_manager_gets_options_and_records_too(browser_for: Any, demo_pack: None) -> None:
    manager = browser_for("manager", "manager-1")
    offer_set = new_set(manager)

    record(manager, offer_set, "a")

    assert "Recorded" in text(status(manager, offer_set))
    assert Outcome.objects.get().agent == manager.user


def test_customer_lookups_are_limited_per_user_so_ids_cannot_be_guessed_in_bulk(
    browser_for: Any, agent: Client, demo_pack: None, settings: Any
) -> None:
    settings.CONSOLE_LOOKUP_RATE = "3/min"
    Customer.objects.create(external_id="C-1001", name="Linda Park", tier="gold")
    with time_machine.travel(timezone.now(), tick=False):
        answers = [agent.get("/console/customer/", {"customer_id": f"C-100{n}"}, **HTMX) for n in range(5)]
        other = browser_for("agent", "agent-2").get("/console/customer/", {"customer_id": "C-1001"}, **HTMX)

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    assert "Too many lookups: try again in" in text(answers[3])
    assert "Linda Park" not in text(answers[4])
    assert other.status_code == 200  # per user
