"""Restoring a policy version: ``policy_restore`` and ``manage.py restore_policy``.

A restore writes a new version whose content equals the old one, through the pack
importer's planning and writing, and moves the revision so the engine's index serves it.
"""

from __future__ import annotations

import copy
import io
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from policies.index import policy_index_get
from policies.models import Category, OfferTemplate, Perk, Policy, PolicyRevision, PolicyVersion, RemedyTemplate
from policies.packs import RestoreError, pack_import, policy_restore
from policies.services import policy_version_record
from tests.factories import CategoryFactory, PolicyFactory

pytestmark = pytest.mark.django_db

MODELS = (Category, Perk, Policy, OfferTemplate, RemedyTemplate, PolicyVersion)

V1: dict[str, Any] = {
    "slug": "late-credit",
    "name": "Late credit",
    "priority": 50,
    "conditions": {"categories": ["late_delivery"], "tiers": ["gold"]},
    "remedy": [{"kind": "refund", "title": "Your {money} back", "value": "100"}],
    "offers": [
        {"kind": "fixed_credit", "title": "{money} credit", "value": "30"},
        {"kind": "percent_discount", "title": "{value}% off", "value": "20", "max_amount": "30"},
    ],
}


def v2() -> dict[str, Any]:
    policy = copy.deepcopy(V1)
    policy["priority"] = 70
    policy["offers"][0]["value"] = "35"
    policy["conditions"]["categories"] = ["late_delivery", "damaged_item"]
    policy["offers"].append({"kind": "gift", "title": "A small gift", "value": "5"})
    return policy


def v3() -> dict[str, Any]:
    policy = v2()
    policy["budget"] = {"monthly_cap": "500"}
    policy["remedy"] = []
    policy["description"] = "Now with a cap."
    return policy


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def revision() -> int:
    return PolicyRevision.objects.get(pk=1).number


def versions(policy: Policy) -> list[int]:
    return list(policy.versions.order_by("number").values_list("number", flat=True))


@pytest.fixture
def policy() -> Policy:
    """late-credit at v3, having been v1 and v2 as above."""
    CategoryFactory(slug="late_delivery")
    CategoryFactory(slug="damaged_item")
    for document in (V1, v2(), v3()):
        pack_import(document={"policies": [document]})
    policy = Policy.objects.get(slug="late-credit")
    assert versions(policy) == [1, 2, 3]
    return policy


def restore_command(*args: str) -> str:
    out = io.StringIO()
    call_command("restore_policy", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


# --- The service ------------------------------------------------------------------------------


def test_restoring_v1_after_v3_makes_v4_with_v1s_content_and_the_engine_serves_it(
    policy: Policy, django_user_model: Any
) -> None:
    index = policy_index_get()
    assert index.policies[policy.pk].priority == 70  # the index has v3
    first_offer, second_offer, _ = OfferTemplate.objects.filter(policy=policy).order_by("order")
    before = revision()
    editor = django_user_model.objects.create(username="editor")

    restored = policy_restore(policy=policy, number=1, actor=editor)

    assert restored is not None
    assert restored.number == 4
    assert versions(policy) == [1, 2, 3, 4]
    assert restored.snapshot == policy.versions.get(number=1).snapshot
    assert (restored.reason, restored.created_by) == ("restored from v1", editor)
    assert restored.changes == [
        "Description removed",
        "Priority: 70 → 50",
        "Condition changed: categories damaged_item, late_delivery → late_delivery",
        "Budget: monthly budget removed (was 500.00)",
        'Remedy 1 (refund) added: "Your {money} back", value 100.00',
        "Offer 1 (fixed credit): value 35.00 → 30.00",
        'Offer 3 (gift) removed: "A small gift"',
    ]
    assert policy.version == 4  # the caller's instance is refreshed
    assert revision() > before
    # Offers keep their identity by position, so what the ranking learned stays with them.
    assert list(OfferTemplate.objects.filter(policy=policy).order_by("order").values_list("pk", "value")) == [
        (first_offer.pk, Decimal("30.00")),
        (second_offer.pk, Decimal("20.00")),
    ]

    compiled = policy_index_get().policies[policy.pk]
    assert (compiled.version, compiled.priority, compiled.monthly_cap) == (4, 50, None)
    assert compiled.category_ids == {Category.objects.get(slug="late_delivery").pk}
    assert [(o.kind, o.value) for o in compiled.offers] == [
        ("fixed_credit", Decimal("30.00")),
        ("percent_discount", Decimal("20.00")),
    ]
    assert [(r.kind, r.value) for r in compiled.remedies] == [("refund", Decimal("100.00"))]


def test_restoring_the_current_content_changes_nothing(policy: Policy) -> None:
    before_counts, before_revision = counts(), revision()

    assert policy_restore(policy=policy, number=3) is None

    assert counts() == before_counts
    assert revision() == before_revision
    assert versions(policy) == [1, 2, 3]


def test_restoring_an_older_version_equal_to_the_current_one_changes_nothing(policy: Policy) -> None:
    policy_restore(policy=policy, number=1)  # v4 = v1
    before_counts, before_revision = counts(), revision()

    assert policy_restore(policy=policy, number=1) is None

    assert (counts(), revision()) == (before_counts, before_revision)


@pytest.mark.parametrize("number", [0, 4, 99])
def test_a_version_that_does_not_exist_is_an_error_naming_those_that_do_and_writes_nothing(
    policy: Policy, number: int
) -> None:
    before_counts, before_revision = counts(), revision()

    with pytest.raises(RestoreError) as raised:
        policy_restore(policy=policy, number=number)

    assert raised.value.errors == [f"policy late-credit has no version {number}; its versions are v1–v3"]
    assert (counts(), revision()) == (before_counts, before_revision)
    policy.refresh_from_db()
    assert policy.version == 3


def test_a_category_deleted_since_is_an_error_and_writes_nothing(policy: Policy) -> None:
    policy_restore(policy=policy, number=2)  # v4 = v2, naming damaged_item
    pack_import(document={"policies": [V1]})  # v5 = v1
    Category.objects.filter(slug="damaged_item").delete()
    before_counts, before_revision = counts(), revision()

    with pytest.raises(RestoreError) as raised:
        policy_restore(policy=policy, number=2)

    assert raised.value.errors == [
        "v2.conditions.categories: 'damaged_item' no longer exists; create it again to restore this version, "
        "or edit the policy instead"
    ]
    assert (counts(), revision()) == (before_counts, before_revision)


def test_a_slug_another_policy_took_since_is_an_error_and_writes_nothing(policy: Policy) -> None:
    policy.slug = "late-credit-old"
    policy.save()
    policy_version_record(policy=policy, reason="renamed")  # v4
    PolicyFactory(slug="late-credit")
    before_counts, before_revision = counts(), revision()

    with pytest.raises(RestoreError) as raised:
        policy_restore(policy=policy, number=1)

    assert len(raised.value.errors) == 1
    assert raised.value.errors[0].startswith("v1.slug: ")
    assert "already exists" in raised.value.errors[0]
    assert (counts(), revision()) == (before_counts, before_revision)
    policy.refresh_from_db()
    assert (policy.slug, policy.version) == ("late-credit-old", 4)


def test_a_restore_brings_back_the_old_slug_when_it_is_free(policy: Policy) -> None:
    policy.slug = "late-credit-old"
    policy.save()
    policy_version_record(policy=policy, reason="renamed")  # v4

    restored = policy_restore(policy=policy, number=3)

    assert restored.changes == ["Slug: late-credit-old → late-credit"]
    assert Policy.objects.get(pk=policy.pk).slug == "late-credit"
    assert Policy.objects.count() == 1


# --- The command ------------------------------------------------------------------------------


def test_restore_policy_command_prints_the_new_version_and_its_lines(policy: Policy) -> None:
    output = restore_command("late-credit", "2")

    assert output == (
        "policy late-credit: restored v2 as v4\n"
        "  Description removed\n"
        "  Budget: monthly budget removed (was 500.00)\n"
        '  Remedy 1 (refund) added: "Your {money} back", value 100.00\n'
    )
    assert versions(policy) == [1, 2, 3, 4]
    assert policy.versions.get(number=4).snapshot == policy.versions.get(number=2).snapshot


def test_restore_policy_command_takes_v1_as_well_as_1(policy: Policy) -> None:
    assert restore_command("late-credit", "v1").startswith("policy late-credit: restored v1 as v4\n")


def test_restore_policy_command_says_when_nothing_changes(policy: Policy) -> None:
    before_counts = counts()

    assert restore_command("late-credit", "3") == "policy late-credit is already as v3; nothing changed\n"
    assert counts() == before_counts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["late-credit", "7"], "nothing restored: policy late-credit has no version 7; its versions are v1–v3"),
        (["no-such-policy", "1"], "no policy with slug 'no-such-policy'"),
        (["late-credit", "first"], "VERSION must be a version number such as 1 (or v1), got 'first'"),
        (["late-credit", "-1"], "VERSION must be a version number such as 1 (or v1), got '-1'"),
        (["late-credit", "1.5"], "VERSION must be a version number such as 1 (or v1), got '1.5'"),
    ],
)
def test_restore_policy_command_fails_clearly_and_writes_nothing(policy: Policy, args: list[str], message: str) -> None:
    before_counts, before_revision = counts(), revision()

    with pytest.raises(CommandError) as raised:
        restore_command(*args)

    assert str(raised.value) == message
    assert (counts(), revision()) == (before_counts, before_revision)
