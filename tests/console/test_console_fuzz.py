"""Bad input at the console is a clear answer, never a 500: any text in any field of the incident form, the
record form, the customer lookup and the queue's actions gets a 200 or a 4xx, and what is refused writes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compensation.models import Customer, Escalation, Incident, OfferSet, OutcomeSubmission
from console.incident import FIELDS
from tests.console.test_console_escalations import escalation_new
from tests.console.test_console_views import HTMX, new_set

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Any text (NUL, surrogate-free unicode, huge numbers as text, whitespace), or a value a field might plausibly take.
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "-1", "0", "1e309", "NaN", "9" * 40, "late_delivery", "gold", "a", "declined"]),
)
FORMS = st.fixed_dictionaries({}, optional={field.name: TEXT for field in FIELDS})


def rows() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Customer, Incident, OfferSet, OutcomeSubmission))


@FUZZ
@given(form=FORMS)
def test_any_incident_form_gets_options_or_messages(agent: Client, demo_pack: None, form: dict[str, str]) -> None:
    before = rows()
    response = agent.post("/console/options/", form, **HTMX)
    assert response.status_code in {200, 400}, (form, response.status_code)
    if response.status_code == 400:
        assert rows() == before  # refused: nothing written


@FUZZ
@given(choice=TEXT, satisfaction=TEXT, notes=TEXT)
def test_any_record_form_is_recorded_or_refused_clearly(
    agent: Client, demo_pack: None, choice: str, satisfaction: str, notes: str
) -> None:
    offer_set = OfferSet.objects.filter(created_by=agent.user).first() or new_set(agent)
    before = OutcomeSubmission.objects.count()
    response = agent.post(
        f"/console/offer-sets/{offer_set.pk}/outcome/",
        {"choice": choice, "satisfaction": satisfaction, "notes": notes},
        **HTMX,
    )
    assert response.status_code in {200, 400, 409}, (choice, satisfaction, notes, response.status_code)
    if response.status_code != 200:
        assert OutcomeSubmission.objects.count() == before


@FUZZ
@given(customer_id=TEXT)
def test_any_customer_lookup_answers(agent: Client, demo_pack: None, settings: Any, customer_id: str) -> None:
    settings.CONSOLE_LOOKUP_RATE = "100000/min"  # every example is a lookup by the same agent
    response = agent.get("/console/customer/", {"customer_id": customer_id}, **HTMX)
    assert response.status_code == 200


@FUZZ
@given(action=st.sampled_from(["acknowledge", "resolve", "approve", "reject"]), field=TEXT)
def test_any_queue_action_answers_clearly(browser_for: Any, action: str, field: str) -> None:
    manager = browser_for("manager", "manager-fuzz")
    escalation = Escalation.objects.first() or escalation_new(due_in=timedelta(hours=3))
    response = manager.post(
        f"/console/escalations/{escalation.pk}/{action}/", {"resolution": field, "reason": field}, **HTMX
    )
    assert response.status_code in {200, 400, 409}, (action, field, response.status_code)
