"""The browsable API's form for a write asks for what the write takes: an offer set's customer and incident,
not the fields of the answer (score, coupon code, follow-up due). Its raw-data form starts from the same body
as Swagger's "Try it out", the operation's first example in the schema; OPTIONS describes the input too."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from tests.test_schema_examples import ROLE, SCHEMA, _request_examples, _writes_with_a_body

pytestmark = pytest.mark.django_db

RAW_CONTENT = re.compile(r'<textarea name="_content"[^>]*>(.*?)</textarea>', re.DOTALL)
# Values that name no object: the form is shown whatever the path names (a GET of a write-only URL is a 405).
PATH_VALUES = {
    "offer_set_id": "6a1f2c3e-0000-4000-8000-000000000001",
    "escalation_id": 1,
    "token": "not-a-real-link",
    "external_id": "C-1042",
    "event_id": 1,
}


def _session_client(client: Any, make_user: Any, role: str | None) -> Any:
    if role is not None:
        user, _ = make_user(f"browsable-{role}", role)
        client.force_login(user)
    return client


def _raw_forms(page: str) -> list[str]:
    return [html.unescape(content) for content in RAW_CONTENT.findall(page)]


def test_the_offer_set_form_asks_for_a_customer_and_an_incident(client: Any, make_user: Any) -> None:
    agent = _session_client(client, make_user, "agent")

    response = agent.get("/api/v1/offer-sets/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    (form,) = _raw_forms(page)
    body = json.loads(form)
    assert set(body) == {"customer", "incident"}
    assert body["customer"]["tier"] == "gold"
    assert body["incident"]["category"] == "late_delivery"
    for output_field in ("score", "coupon_code", "follow_up_due", "propensity_mean", "options"):
        assert output_field not in form
    # The list itself still shows offer sets as they are answered.
    assert '"results"' in html.unescape(page)


def test_options_describes_what_a_post_takes(agent1: Any) -> None:
    response = agent1.options("/api/v1/offer-sets/")

    assert response.status_code == 200
    post = response.json()["actions"]["POST"]
    assert set(post) == {"customer", "incident"}
    assert set(post["incident"]["children"]) >= {"category", "severity", "order_value"}


def test_the_offer_set_list_still_answers_offer_sets(agent1: Any, demo_pack: None) -> None:
    made = agent1.post(
        "/api/v1/offer-sets/",
        {"customer": {"external_id": "C-7"}, "incident": {"category": "late_delivery", "severity": 2}},
        format="json",
    )
    assert made.status_code == 201, made.content

    listed = agent1.get("/api/v1/offer-sets/")

    assert listed.status_code == 200
    (row,) = listed.json()["results"]
    assert row["id"] == made.json()["id"]
    assert {"options", "remedy", "outcome", "escalation"} <= set(row)


@pytest.mark.parametrize("name", sorted(ROLE))
def test_each_write_form_starts_from_the_schemas_first_example(name: str, client: Any, make_user: Any) -> None:
    method, path = name.split(" ")
    first = next(iter(_request_examples(_writes_with_a_body(SCHEMA)[name]).values()))["value"]
    browser = _session_client(client, make_user, ROLE[name])

    response = browser.get(path.format(**PATH_VALUES), HTTP_ACCEPT="text/html")

    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert f"Make a {method} request" in page
    (form,) = _raw_forms(page)
    assert json.loads(form) == first
