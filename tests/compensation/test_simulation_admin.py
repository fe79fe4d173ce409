"""Policy simulations in the admin (API.md v2, "Policy lifecycle"): "Simulate" on a policy's add and change forms
runs the form as posted as a one-policy draft and saves nothing; a page takes a pack upload.

The world is tests/compensation/test_simulations.py's: three live policies, eleven incidents in the 30-day
window, no learning yet (every option's propensity mean is 1/3, shown as 0.3333). Its figures are computed by
hand there; the ones this file states again are derived in the comments beside them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from compensation import simulation_admin
from compensation.services.simulations import simulate_policies
from policies.models import Category, Policy, PolicyRevision, PolicyVersion
from policies.serialization import policy_to_pack
from tests.compensation.test_simulations import LIVE, NOW, draft, row_counts, world  # noqa: F401 - a fixture
from tests.policies.test_admin import form_errors, offer_fields, page_form

pytestmark = pytest.mark.usefixtures("frozen")

PACK_URL = "admin:policies_policy_simulate"


@pytest.fixture
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def change_url(policy: Policy) -> str:
    return reverse("admin:policies_policy_change", args=[policy.pk])


def stored_state() -> dict[str, Any]:
    """Everything a save would touch: every table's row count, the revision, each policy as stored."""
    return {
        "counts": row_counts(),
        "revision": list(PolicyRevision.objects.values_list("number", flat=True)),
        "policies": {p.slug: (policy_to_pack(p), p.version, p.updated_at) for p in Policy.objects.all()},
        "versions": list(PolicyVersion.objects.values_list("policy__slug", "number")),
    }


def simulate_form(client: Any, policy: Policy, **changes: str) -> dict[str, Any]:
    """The change form as the page renders it, with ``changes`` and the Simulate button."""
    data = page_form(client.get(change_url(policy)), "policy_form")
    data.update(changes)
    data["_simulate"] = "Simulate"
    return data


@pytest.fixture
def incidents(world: Any) -> list[Any]:  # noqa: F811 - test_simulations' world: its policies and incidents
    return world


@pytest.fixture
def late_credit(incidents: list[Any]) -> Policy:
    return Policy.objects.get(slug="late-credit")


def late_credit_at(value: str) -> dict[str, Any]:
    """The draft written out by hand: late-credit as in the live pack with its credit at ``value``."""
    entry = copy.deepcopy(LIVE["policies"][0])
    entry["offers"][0]["value"] = value
    return {"policies": [entry]}


# --- The change form ------------------------------------------------------------------------------


def test_change_form_has_the_simulate_button_and_days(admin_client: Any, late_credit: Policy) -> None:
    response = admin_client.get(change_url(late_credit))
    assertContains(response, '<input type="submit" name="_simulate" value="Simulate">', html=True)
    data = page_form(response, "policy_form")
    assert data["_simulate-days"] == "30"
    assertContains(response, '<option value="7">7 days</option>', html=True)
    assertContains(response, '<option value="90">90 days</option>', html=True)
    assertNotContains(response, "Simulation result")


def test_simulate_shows_the_unsaved_change_and_saves_nothing(admin_client: Any, late_credit: Policy) -> None:
    before = stored_state()
    response = admin_client.post(
        change_url(late_credit), simulate_form(admin_client, late_credit, **{"offers-0-value": "15.00"})
    )

    assert response.status_code == 200, form_errors(response)
    assert stored_state() == before
    assert Policy.objects.get(slug="late-credit").offers.get().value == Decimal("10.00")

    simulation = response.context["simulation"]
    result = simulation.result
    assert result == simulate_policies(late_credit_at("15.00"), days=30, now=NOW)
    # By hand: the five late deliveries (1, 2, 3, 4, 11) get a 15.00 credit instead of 10.00; damaged items
    # (6, 7 without options) are as they were.
    assert (result["incidents"], result["changed"]) == (11, 5)
    assert (result["no_options_before"], result["no_options_after"]) == (2, 2)
    # 101.3247 before (test_simulations); after, five credits 5.00 dearer: + 25 x 0.3333 = 8.3325.
    assert (result["expected_cost_before"], result["expected_cost_after"]) == ("101.32", "109.66")
    assert simulation.focus_rows == [
        {
            "slug": "late-credit",
            "shown_before": 5,
            "shown_after": 5,
            "expected_cost_before": "16.67",  # 50 x 0.3333
            "expected_cost_after": "25.00",  # 75 x 0.3333 = 24.9975
            "monthly_cap": "50.00",
            "month_spent": "40.00",
            "projected_month_spend": "57.50",  # 40 + 24.9975 / 30 x 21 days left
            "cap_reached_on": "2026-03-23",
        }
    ]
    assert simulation.focus_warnings == [
        "policy 'late-credit': projected spend 57.50 passes its monthly cap 50.00 on 2026-03-23"
    ]
    # gold-discount's perk is never shown, as before: a warning about another policy.
    assert simulation.other_warnings == [
        "policy 'gold-discount': offer 2 (Personalized perk (matched to interests), '{perk_name} on us') is never shown"
    ]
    assert simulation.other_changed_rows == []

    page = response.content.decode()
    assert page.index("Simulation result") < page.index('id="id_name"')  # above the form
    assertContains(response, "Nothing was saved.")
    assertContains(response, "Every incident of the window replayed (11).")
    assertContains(response, "<td>101.32</td><td>109.66 (+8.34)</td>", html=True)
    assertContains(response, "<caption>This policy</caption>", html=True)
    assertContains(response, "<td>16.67 → 25.00</td>", html=True)
    assertContains(response, "<td>2026-03-23</td>", html=True)
    assertContains(response, "projected spend 57.50 passes its monthly cap 50.00 on 2026-03-23")
    # Five examples, the first of them incident 1: a 10 credit before, a 15 credit after.
    assertContains(response, 'class="simulate-example"', count=5)
    assertContains(response, "<tr><td>a</td><td>A 10 credit</td><td>late-credit</td><td>10.00</td></tr>", html=True)
    assertContains(response, "<tr><td>a</td><td>A 15 credit</td><td>late-credit</td><td>15.00</td></tr>", html=True)
    # The form comes back as posted, so the admin can simulate again or save.
    again = page_form(response, "policy_form")
    assert again["offers-0-value"] == "15.00"
    assert again["_simulate-days"] == "30"


def test_simulate_then_save_saves_the_simulated_form(admin_client: Any, late_credit: Policy) -> None:
    response = admin_client.post(
        change_url(late_credit), simulate_form(admin_client, late_credit, **{"offers-0-value": "15.00"})
    )
    data = page_form(response, "policy_form")
    data["_save"] = "Save"
    response = admin_client.post(change_url(late_credit), data)
    assert response.status_code == 302, form_errors(response)
    assert Policy.objects.get(slug="late-credit").offers.get().value == Decimal("15.00")
    assert PolicyVersion.objects.filter(policy__slug="late-credit").count() == 2


def test_days_select_sets_the_window(admin_client: Any, late_credit: Policy) -> None:
    data = simulate_form(admin_client, late_credit, **{"offers-0-value": "15.00", "_simulate-days": "7"})
    response = admin_client.post(change_url(late_credit), data)
    result = response.context["simulation"].result
    # Incidents 1 to 7 are within 7 days; of them 1 to 4 are late deliveries.
    assert (result["days"], result["incidents"], result["changed"]) == (7, 7, 4)
    assert page_form(response, "policy_form")["_simulate-days"] == "7"


def test_days_left_out_are_30(admin_client: Any, late_credit: Policy) -> None:
    data = simulate_form(admin_client, late_credit)
    del data["_simulate-days"]
    response = admin_client.post(change_url(late_credit), data)
    assert response.context["simulation"].result["days"] == 30


def test_days_not_offered_is_an_error_and_no_simulation(
    admin_client: Any, late_credit: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulation_admin, "simulate_policies", _must_not_run)
    response = admin_client.post(
        change_url(late_credit), simulate_form(admin_client, late_credit, **{"_simulate-days": "400"})
    )
    assert response.status_code == 400
    assertContains(
        response,
        "Simulate over the last: Select a valid choice. 400 is not one of the available choices.",
        status_code=400,
    )
    assert response.context["simulation"] is None


def _must_not_run(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("simulated an invalid form")


def test_invalid_form_shows_its_errors_and_simulates_nothing(
    admin_client: Any, late_credit: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulation_admin, "simulate_policies", _must_not_run)
    before = stored_state()
    data = simulate_form(admin_client, late_credit, name="", **{"offers-0-value": "-5"})
    response = admin_client.post(change_url(late_credit), data)

    assert response.status_code == 400  # as Save answers an invalid form
    assertContains(response, "Please correct the errors below.", status_code=400)
    assert response.context["adminform"].form.errors["name"] == ["This field is required."]
    assert response.context["simulation"] is None
    assertNotContains(response, "Simulation result", status_code=400)
    assert stored_state() == before


def test_deleted_and_empty_inline_rows_are_left_out_and_new_ones_go_last(
    admin_client: Any,
    incidents: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """gold-discount's perk is marked for deletion, a gift is added and an extra form is left empty: the draft
    has the discount, then the gift."""
    seen: list[Any] = []

    def recording(document: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append(copy.deepcopy(document))
        return simulate_policies(document, **kwargs)

    monkeypatch.setattr(simulation_admin, "simulate_policies", recording)
    gold = Policy.objects.get(slug="gold-discount")
    data = simulate_form(admin_client, gold, **{"offers-1-DELETE": "on"})
    data.update(offer_fields(2, kind="gift", title="A gift", value="8.00", order="0"))
    data.update(offer_fields(3, order="0"))  # "Add another" pressed and left empty
    data["offers-TOTAL_FORMS"] = "4"
    before = stored_state()
    response = admin_client.post(change_url(gold), data)

    assert response.status_code == 200, form_errors(response)
    [document] = seen
    [entry] = document["policies"]
    assert entry["slug"] == "gold-discount"
    assert [(offer["kind"], offer["value"]) for offer in entry["offers"]] == [
        ("percent_discount", "20.00"),
        ("gift", "8.00"),
    ]
    assert stored_state() == before
    assert gold.offers.count() == 2


def test_a_renamed_slug_is_simulated_as_the_same_policy(admin_client: Any, late_credit: Policy) -> None:
    data = simulate_form(admin_client, late_credit, slug="late-credit-2", **{"offers-0-value": "15.00"})
    response = admin_client.post(change_url(late_credit), data)

    assert response.status_code == 200, form_errors(response)
    assert response.context["simulation"].result == simulate_policies(late_credit_at("15.00"), days=30, now=NOW)
    assertContains(response, "The slug becomes &#x27;late-credit-2&#x27; when saved")
    assert Policy.objects.filter(slug="late-credit").exists()
    assert not Policy.objects.filter(slug="late-credit-2").exists()


def test_an_inactive_policy_is_simulated_as_turned_off(admin_client: Any, late_credit: Policy) -> None:
    data = simulate_form(admin_client, late_credit)
    del data["active"]  # the checkbox unticked
    response = admin_client.post(change_url(late_credit), data)

    assert response.status_code == 200, form_errors(response)
    assertContains(response, "The form leaves this policy inactive: the result is what turning it off would do.")
    [row] = response.context["simulation"].focus_rows
    assert (row["shown_before"], row["shown_after"]) == (5, 0)
    assert response.context["simulation"].result["changed"] == 5  # the five late deliveries lose their credit
    assert Policy.objects.get(slug="late-credit").active


def test_simulate_on_the_add_form_runs_a_new_policy_as_a_draft(admin_client: Any, incidents: list[Any]) -> None:
    late = Category.objects.get(slug="late_delivery")
    data = page_form(admin_client.get(reverse("admin:policies_policy_add")), "policy_form")
    data.update({"name": "Late gift", "slug": "late-gift", "priority": "50", "categories": [str(late.pk)]})
    data.update(offer_fields(0, kind="gift", title="A gift", value="8.00", order="0"))
    data["_simulate"] = "Simulate"
    before = stored_state()
    response = admin_client.post(reverse("admin:policies_policy_add"), data)

    assert response.status_code == 200, form_errors(response)
    assert stored_state() == before
    assert not Policy.objects.filter(slug="late-gift").exists()
    simulation = response.context["simulation"]
    # Every late delivery gets the gift beside its credit (and c2's discount): three options at most, so all shown.
    [row] = simulation.focus_rows
    assert (row["slug"], row["shown_before"], row["shown_after"]) == ("late-gift", 0, 5)
    assert row["expected_cost_after"] == "13.33"  # 5 x 8.00 x 0.3333 = 13.332
    assert simulation.result["changed"] == 5
    assertContains(response, "<caption>This policy</caption>", html=True)
    assert page_form(response, "policy_form")["slug"] == "late-gift"


def test_simulate_on_a_policy_that_does_not_exist_says_so_and_writes_nothing(
    admin_client: Any, late_credit: Policy
) -> None:
    data = simulate_form(admin_client, late_credit)
    before = stored_state()
    missing = reverse("admin:policies_policy_change", args=[late_credit.pk + 1000])
    response = admin_client.post(missing, data, follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:index")
    assert [str(m) for m in response.context["messages"]] == [
        f"policy with ID “{late_credit.pk + 1000}” doesn’t exist. Perhaps it was deleted?"
    ]
    assert stored_state() == before


def test_simulate_by_slug_opens_the_policy_and_an_unknown_slug_is_an_error(
    admin_client: Any, late_credit: Policy
) -> None:
    response = admin_client.get(reverse("admin:policies_policy_simulate_policy", args=["late-credit"]))
    assert response.status_code == 302
    assert response["Location"] == f"{change_url(late_credit)}#simulate"

    before = stored_state()
    response = admin_client.get(reverse("admin:policies_policy_simulate_policy", args=["no-such-policy"]), follow=True)
    assert response.redirect_chain[-1][0] == reverse(PACK_URL)
    assert [str(m) for m in response.context["messages"]] == [
        "No policy has the slug “no-such-policy”; nothing was simulated."
    ]
    assert stored_state() == before


@override_settings(SIMULATION_ADMIN_SAMPLE=4)
def test_over_the_sample_limit_every_nth_incident_is_replayed_and_the_page_says_so(
    admin_client: Any,
    late_credit: Policy,
    incidents: list[Any],
) -> None:
    response = admin_client.post(
        change_url(late_credit), simulate_form(admin_client, late_credit, **{"offers-0-value": "15.00"})
    )

    # Eleven incidents in the window, at most four replayed: every third (ceil(11 / 4)), those whose id is a
    # multiple of 3.
    sampled = [incident for incident in incidents[:11] if incident.pk % 3 == 0]
    result = response.context["simulation"].result
    assert result["sample"] == {"every": 3, "incidents": len(sampled), "of": 11}
    assert result["incidents"] == len(sampled)
    assertContains(
        response,
        f"A sample: every 3rd incident ({len(sampled)} of 11); counts and costs are the sample&#x27;s; projections "
        "scale the sample&#x27;s daily cost up by 3.",
    )


def test_sample_note_reads_as_english() -> None:
    note = simulation_admin.AdminSimulation(
        result={"sample": {"every": 15, "incidents": 20_000, "of": 300_000}}, seconds=1.0
    ).sample_note
    assert note == (
        "A sample: every 15th incident (20,000 of 300,000); counts and costs are the sample's; projections scale "
        "the sample's daily cost up by 15."
    )
    ordinals = [simulation_admin._ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)]
    assert ordinals == ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]


# --- Permissions ----------------------------------------------------------------------------------


@pytest.fixture
def staff(django_user_model: Any, db: None) -> Any:
    def make(*codenames: str) -> Any:
        user = django_user_model.objects.create_user(
            f"staff-{'-'.join(codenames) or 'none'}", password="x", is_staff=True
        )
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="policies", codename__in=codenames))
        return user

    return make


def test_simulate_needs_the_change_permission(client: Any, staff: Any, late_credit: Policy) -> None:
    client.force_login(staff("view_policy"))
    page = client.get(change_url(late_credit))
    assert page.status_code == 200  # they may look, without the button
    assertNotContains(page, 'name="_simulate"')
    assert client.post(change_url(late_credit), {"_simulate": "Simulate"}).status_code == 403
    assert client.get(reverse(PACK_URL)).status_code == 403
    upload = SimpleUploadedFile("draft.json", json.dumps(draft()).encode())
    assert client.post(reverse(PACK_URL), {"pack": upload, "days": "30"}).status_code == 403
    assert client.get(reverse("admin:policies_policy_simulate_policy", args=["late-credit"])).status_code == 403


def test_pack_page_is_for_staff_with_the_change_permission(client: Any, staff: Any, django_user_model: Any) -> None:
    assert client.get(reverse(PACK_URL)).status_code == 302  # to the admin's login
    client.force_login(django_user_model.objects.create_user("not-staff", password="x"))
    assert client.get(reverse(PACK_URL)).status_code == 302
    client.force_login(staff("change_policy"))
    response = client.get(reverse(PACK_URL))
    assert response.status_code == 200
    assertContains(response, '<input type="file" name="pack" required aria-describedby="id_pack_helptext"')


def test_changelist_links_to_the_pack_page(admin_client: Any) -> None:
    response = admin_client.get(reverse("admin:policies_policy_changelist"))
    assertContains(response, f'<a href="{reverse(PACK_URL)}" class="viewlink">Simulate a pack</a>', html=True)


# --- The pack page --------------------------------------------------------------------------------


def post_pack(client: Any, name: str, content: bytes, days: str = "30") -> Any:
    return client.post(reverse(PACK_URL), {"pack": SimpleUploadedFile(name, content), "days": days})


@pytest.mark.parametrize("name", ["draft.json", "draft.yaml"])
def test_pack_upload_is_simulated_and_nothing_written(admin_client: Any, incidents: list[Any], name: str) -> None:
    import yaml

    text = json.dumps(draft()) if name.endswith(".json") else yaml.safe_dump(draft())
    before = stored_state()
    response = post_pack(admin_client, name, text.encode())

    assert response.status_code == 200
    assert stored_state() == before
    simulation = response.context["simulation"]
    assert simulation.result == simulate_policies(draft(), days=30, now=NOW)
    assert [row["slug"] for row in simulation.focus_rows] == ["late-credit", "damaged-refund", "platinum-only"]
    assert simulation.result["changed"] == 7  # as test_simulations counts by hand
    assertContains(response, "<caption>The pack&#x27;s policies</caption>", html=True)
    assertContains(response, "policy &#x27;platinum-only&#x27; matches none of the 11 incidents of the last 30 days")
    assertContains(response, 'class="simulate-example"', count=7)


def test_pack_that_would_not_import_lists_the_import_errors(admin_client: Any, incidents: list[Any]) -> None:
    bad = draft()
    bad["policies"][0]["offers"][0]["value"] = "lots"
    bad["policies"][1]["conditions"]["categories"] = ["nope"]
    before = stored_state()
    response = post_pack(admin_client, "bad.json", json.dumps(bad).encode())

    assert response.status_code == 400
    assert stored_state() == before
    assertContains(response, "The pack would not import, so nothing was simulated:", status_code=400)
    problems = response.context["simulation_problems"]
    assert problems[0].startswith("policies[0].offers[0].value: must be a decimal string")
    assert problems[1].startswith("policies[1].conditions.categories: unknown category 'nope'")
    assertContains(response, "policies[1].conditions.categories: unknown category &#x27;nope&#x27;", status_code=400)
    assert response.context["simulation"] is None


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("words.yaml", b"just some words\n", "pack: must be a mapping with keys categories, perks, policies"),
        ("broken.yaml", b"policies: [\n", "broken.yaml: invalid YAML at line 2, column 1"),
        ("broken.json", b"{", "broken.json: invalid JSON at line 1, column 2"),
        ("empty-pack.yaml", b"# nothing\n", "pack: is empty; expected categories, perks and policies"),
    ],
)
def test_not_a_pack_is_a_clear_error(
    admin_client: Any, incidents: list[Any], name: str, content: bytes, problem: str
) -> None:
    before = stored_state()
    response = post_pack(admin_client, name, content)
    assert response.status_code == 400
    assert response.context["simulation_problems"][0].startswith(problem)
    assert stored_state() == before


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "picture.png: is not UTF-8 text; a pack is a YAML or JSON file."),
        (b"", "The submitted file is empty."),
    ],
)
def test_a_file_that_is_not_text_is_refused(
    admin_client: Any, incidents: list[Any], content: bytes, error: str
) -> None:
    response = post_pack(admin_client, "picture.png", content)
    assert response.status_code == 400
    assert response.context["form"].errors["pack"] == [error]


@override_settings(SIMULATION_PACK_MAX_BYTES=2048)
def test_a_pack_over_the_size_limit_is_refused_unread(
    admin_client: Any, incidents: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulation_admin, "pack_load", _must_not_run)
    response = post_pack(admin_client, "big.yaml", b"#" * 3000 + b"\n")
    assert response.status_code == 400
    assert response.context["form"].errors["pack"] == ["The file is 3 KB; a pack may be at most 2 KB."]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=4096, SIMULATION_PACK_MAX_BYTES=32 * 1024)
def test_the_pack_page_alone_takes_a_body_over_the_general_limit(admin_client: Any, incidents: list[Any]) -> None:
    """A request body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413 everywhere but on the pack page, up to its own
    limit and room for its form."""
    padded = ("#" * 1000 + "\n") * 20 + json.dumps(draft())  # about 20 KB: YAML comments, then the pack
    response = post_pack(admin_client, "draft.yaml", padded.encode())
    assert response.status_code == 200
    assert response.context["simulation"].result["changed"] == 7

    too_big = post_pack(admin_client, "draft.yaml", b"#" * (32 * 1024 + 64 * 1024 + 1))
    assert too_big.status_code == 413
    elsewhere = admin_client.post(
        reverse("admin:compensation_try"), {"pack": SimpleUploadedFile("draft.yaml", padded.encode())}
    )
    assert elsewhere.status_code == 413


def test_pack_days_and_sampling(admin_client: Any, incidents: list[Any], settings: Any) -> None:
    response = post_pack(admin_client, "draft.json", json.dumps(draft()).encode(), days="90")
    result = response.context["simulation"].result
    assert (result["days"], result["incidents"], "sample" in result) == (90, 12, False)

    settings.SIMULATION_ADMIN_SAMPLE = 6
    response = post_pack(admin_client, "draft.json", json.dumps(draft()).encode(), days="90")
    # Twelve incidents in 90 days, at most six replayed: every second one, those with an even id.
    sampled = [incident for incident in incidents if incident.pk % 2 == 0]
    assert response.context["simulation"].result["sample"] == {"every": 2, "incidents": len(sampled), "of": 12}
    assertContains(response, f"A sample: every 2nd incident ({len(sampled)} of 12)")
