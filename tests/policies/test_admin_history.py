"""The policy admin's history through Django's test client: change lines in words (also for versions saved
with the old lines), two versions side by side, and restoring a version (a confirmation page, then a POST)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from policies.models import Category, OfferTemplate, Policy, PolicyRevision, PolicyVersion, RemedyTemplate
from policies.packs import pack_import
from tests.factories import CategoryFactory, PolicyFactory

pytestmark = pytest.mark.django_db

V1: dict[str, Any] = {
    "slug": "late-credit",
    "name": "Late credit",
    "priority": 50,
    "conditions": {"categories": ["late_delivery"]},
    "offers": [{"kind": "fixed_credit", "title": "{money} credit", "value": "30"}],
}


@pytest.fixture
def policy() -> Policy:
    """late-credit at v3: v2 raised the priority to 60 and the credit to 35, v3 added tiers gold and platinum."""
    CategoryFactory(slug="late_delivery")
    second = copy.deepcopy(V1)
    second["priority"] = 60
    second["offers"][0]["value"] = "35"
    third = copy.deepcopy(second)
    third["conditions"]["tiers"] = ["gold", "platinum"]
    for document in (V1, second, third):
        pack_import(document={"policies": [document]})
    return Policy.objects.get(slug="late-credit")


def compare_url(policy: Policy) -> str:
    return reverse("admin:policies_policy_versions_compare", args=[policy.pk])


def restore_url(policy: Policy, number: int) -> str:
    return reverse("admin:policies_policy_version_restore", args=[policy.pk, number])


def change_url(policy: Policy) -> str:
    return reverse("admin:policies_policy_change", args=[policy.pk])


def written() -> tuple:
    return (
        PolicyVersion.objects.count(),
        OfferTemplate.objects.count(),
        RemedyTemplate.objects.count(),
        PolicyRevision.objects.get(pk=1).number,
    )


def staff_client(django_user_model: Any, *codenames: str) -> Client:
    user = django_user_model.objects.create_user("viewer", password="not-used", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="policies", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


# --- The history on the change page ---------------------------------------------------------


def test_every_version_reads_in_words_also_those_saved_with_the_old_lines(admin_client: Any, policy: Policy) -> None:
    # Versions saved before this change keep their old lines; the page computes them from the snapshots.
    PolicyVersion.objects.filter(policy=policy, number=2).update(
        changes=["offers[0].value: 30.00 → 35.00", "priority: 50 → 60"]
    )

    response = admin_client.get(change_url(policy))

    assertContains(response, "<li>Priority: 50 → 60</li>", html=True)
    assertContains(response, "<li>Offer 1 (fixed credit): value 30.00 → 35.00</li>", html=True)
    assertContains(response, "<li>Condition added: tiers gold, platinum</li>", html=True)
    assertContains(response, "<li>created</li>", html=True)
    assertNotContains(response, "offers[0].value")
    assertNotContains(response, "<pre>")  # no raw YAML any more


def test_each_older_version_has_compare_and_restore_links_and_the_current_one_compares_with_the_previous(
    admin_client: Any, policy: Policy
) -> None:
    response = admin_client.get(change_url(policy))

    url = compare_url(policy)
    assertContains(response, f'<a href="{url}?left=1&amp;right=3">Compare with v3</a>', html=True)
    assertContains(response, f'<a href="{url}?left=2&amp;right=3">Compare with v3</a>', html=True)
    assertContains(response, f'<a href="{url}?left=2&amp;right=3">Compare with v2</a>', html=True)
    for number in (1, 2):
        assertContains(
            response,
            f'<a class="button" href="{restore_url(policy, number)}" aria-label="Restore v{number}">Restore…</a>',
            html=True,
        )
    assertNotContains(response, restore_url(policy, 3))


# --- Comparing two versions ----------------------------------------------------------------


def test_compare_shows_two_versions_side_by_side_with_the_differing_rows_marked(
    admin_client: Any, policy: Policy
) -> None:
    response = admin_client.get(compare_url(policy), {"left": 1, "right": 3})

    assert response.status_code == 200
    assertContains(response, '<label for="id_left">From version:</label>', html=True)
    assertContains(response, '<label for="id_right">To version:</label>', html=True)
    lines = [
        "Priority: 50 → 60",
        "Condition added: tiers gold, platinum",
        "Offer 1 (fixed credit): value 30.00 → 35.00",
    ]
    assert response.context["lines"] == lines
    for line in lines:
        assertContains(response, f"<li>{line}</li>", html=True)
    assertContains(
        response,
        '<tr class="differs"><th scope="row">Priority <span class="differs-note">(differs)</span></th>'
        "<td>50</td><td>60</td></tr>",
        html=True,
    )
    assertContains(
        response,
        '<tr class="differs"><th scope="row">Tiers <span class="differs-note">(differs)</span></th>'
        "<td>any</td><td>gold, platinum</td></tr>",
        html=True,
    )
    assertContains(response, '<tr><th scope="row">Name</th><td>Late credit</td><td>Late credit</td></tr>', html=True)
    groups = [group.title for group in response.context["groups"]]
    assert groups == ["Basics", "Conditions", "Escalation", "Generosity", "Budget", "Remedy", "Offers"]
    assertContains(response, "table-layout: fixed")  # long texts wrap instead of running off the page


def test_compare_defaults_to_the_current_version_and_the_one_before(admin_client: Any, policy: Policy) -> None:
    response = admin_client.get(compare_url(policy))

    assert (response.context["left"], response.context["right"]) == (2, 3)
    assert response.context["lines"] == ["Condition added: tiers gold, platinum"]


def test_compare_can_show_only_the_rows_that_differ(admin_client: Any, policy: Policy) -> None:
    response = admin_client.get(compare_url(policy), {"left": 1, "right": 2, "only_changed": "on"})

    rows = [(group.title, row.label) for group in response.context["groups"] for row in group.rows]
    assert rows == [("Basics", "Priority"), ("Offers", "Offer 1: value")]


def test_the_same_version_on_both_sides_says_so(admin_client: Any, policy: Policy) -> None:
    response = admin_client.get(compare_url(policy), {"left": 2, "right": 2})

    assertContains(response, "The same version on both sides.")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"left": 9, "right": 3}, "9 is not a version of this policy; its versions are v1, v2, v3."),
        ({"left": 1, "right": 0}, "0 is not a version of this policy; its versions are v1, v2, v3."),
        ({"left": "first", "right": 3}, "first is not a version of this policy; its versions are v1, v2, v3."),
    ],
)
def test_compare_with_an_unknown_version_is_404_with_the_form_and_a_message(
    admin_client: Any, policy: Policy, query: dict, message: str
) -> None:
    response = admin_client.get(compare_url(policy), query)

    assertContains(response, message, status_code=404)
    assertContains(response, 'id="compare-form"', status_code=404)
    assert "groups" not in response.context


def test_compare_of_a_policy_without_versions_says_so(admin_client: Any) -> None:
    bare = PolicyFactory(slug="bare")  # saved without the services, so never versioned

    response = admin_client.get(compare_url(bare))

    assertContains(response, "has no saved versions yet: there is nothing to compare.")


def test_compare_of_an_unknown_policy_is_404(admin_client: Any, policy: Policy) -> None:
    response = admin_client.get(reverse("admin:policies_policy_versions_compare", args=[policy.pk + 100]))

    assert response.status_code == 404


def test_staff_with_view_permission_may_compare_but_not_restore(django_user_model: Any, policy: Policy) -> None:
    client = staff_client(django_user_model, "view_policy")
    before = written()

    assert client.get(compare_url(policy), {"left": 1, "right": 3}).status_code == 200
    page = client.get(change_url(policy))
    assertContains(page, "Compare with v3")
    assertNotContains(page, "Restore…")
    assert client.get(restore_url(policy, 1)).status_code == 403
    assert client.post(restore_url(policy, 1)).status_code == 403
    assert written() == before


def test_staff_without_view_permission_may_not_compare(django_user_model: Any, policy: Policy) -> None:
    client = staff_client(django_user_model)

    assert client.get(compare_url(policy)).status_code == 403


def test_anonymous_users_are_sent_to_log_in(client: Client, policy: Policy) -> None:
    for url in (compare_url(policy), restore_url(policy, 1)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert client.post(restore_url(policy, 1)).status_code == 302
    assert policy.versions.count() == 3


# --- Restoring a version -------------------------------------------------------------------


def test_the_restore_page_shows_what_will_change_and_writes_nothing(admin_client: Any, policy: Policy) -> None:
    before = written()

    response = admin_client.get(restore_url(policy, 1))

    assert response.status_code == 200
    assert response.context["lines"] == [
        "Priority: 60 → 50",
        "Condition removed: tiers gold, platinum",
        "Offer 1 (fixed credit): value 35.00 → 30.00",
    ]
    assertContains(response, "<li>Condition removed: tiers gold, platinum</li>", html=True)
    assertContains(response, "saves a new version, v4, whose content equals v1")
    assertContains(response, '<input type="submit" value="Yes, restore v1">', html=True)
    assertContains(response, 'name="csrfmiddlewaretoken"')
    assert written() == before


def test_restore_posts_a_new_version_and_says_so(admin_client: Any, policy: Policy) -> None:
    response = admin_client.post(restore_url(policy, 1), follow=True)

    assert response.redirect_chain == [(change_url(policy), 302)]
    assert [str(m) for m in response.context["messages"]] == ["Restored v1 as v4."]
    v4 = policy.versions.get(number=4)
    assert v4.snapshot == policy.versions.get(number=1).snapshot
    assert v4.reason == "restored from v1"
    assert v4.created_by.username == "admin"
    policy.refresh_from_db()
    assert (policy.version, policy.priority) == (4, 50)
    assertContains(response, "<li>Priority: 60 → 50</li>", html=True)  # the history shows the new version


def test_restoring_the_current_content_in_the_admin_changes_nothing(admin_client: Any, policy: Policy) -> None:
    before = written()

    page = admin_client.get(restore_url(policy, 3))
    response = admin_client.post(restore_url(policy, 3), follow=True)

    assertContains(page, "Late credit is already as v3; restoring it would change nothing.")
    assertNotContains(page, "Yes, restore")
    assert [str(m) for m in response.context["messages"]] == ["Late credit is already as v3; nothing changed."]
    assert written() == before


def test_restoring_an_unknown_version_is_404_with_a_message_and_writes_nothing(
    admin_client: Any, policy: Policy
) -> None:
    before = written()

    for response in (admin_client.get(restore_url(policy, 7)), admin_client.post(restore_url(policy, 7))):
        assertContains(response, "Late credit has no version 7; its versions are v1, v2, v3.", status_code=404)
    assert written() == before


def test_content_that_no_longer_validates_is_shown_and_writes_nothing(admin_client: Any, policy: Policy) -> None:
    CategoryFactory(slug="seasonal")
    pack_import(document={"policies": [{**V1, "conditions": {"categories": ["late_delivery", "seasonal"]}}]})  # v4
    pack_import(document={"policies": [V1]})  # v5: seasonal gone from the policy, then from the database
    Category.objects.filter(slug="seasonal").delete()
    before = written()

    response = admin_client.post(restore_url(policy, 4))

    assertContains(
        response,
        "v4.conditions.categories: &#x27;seasonal&#x27; no longer exists; create it again to restore this version",
        status_code=400,
    )
    assertContains(response, "Nothing was restored", status_code=400)
    assert written() == before


def test_restore_needs_the_csrf_token(django_user_model: Any, policy: Policy) -> None:
    user = django_user_model.objects.create_superuser("csrf-admin", "csrf@example.com", "not-used")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    before = written()

    assert client.post(restore_url(policy, 1)).status_code == 403
    assert written() == before


def test_staff_with_change_permission_may_restore(django_user_model: Any, policy: Policy) -> None:
    client = staff_client(django_user_model, "view_policy", "change_policy")

    assertContains(client.get(change_url(policy)), "Restore…")
    response = client.post(restore_url(policy, 2))

    assert response.status_code == 302
    assert policy.versions.get(number=4).snapshot == policy.versions.get(number=2).snapshot
