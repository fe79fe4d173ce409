"""Policy packs: ``import_policies`` / ``export_policies`` and ``pack_import`` (README, "Management commands")."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from policies.models import Category, OfferTemplate, Perk, Policy, PolicyRevision, PolicyVersion, RemedyTemplate
from policies.packs import PackError, pack_import, pack_load
from policies.serialization import pack_export
from policies.services import policy_version_record
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

pytestmark = pytest.mark.django_db

SMALL_PACK = Path(__file__).resolve().parents[1] / "data" / "small_pack.yaml"
MODELS = (Category, Perk, Policy, OfferTemplate, RemedyTemplate, PolicyVersion)


@pytest.fixture
def pack() -> dict[str, Any]:
    """The small sample pack as a document, fresh for each test to change."""
    return yaml.safe_load(SMALL_PACK.read_text(encoding="utf-8"))


def write(directory: Path, document: Any, name: str = "pack.yaml") -> str:
    path = directory / name
    text = json.dumps(document) if name.endswith(".json") else yaml.safe_dump(document, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return str(path)


def import_policies(*args: str) -> str:
    """Run the command; returns what it wrote to standard output."""
    out = io.StringIO()
    call_command("import_policies", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def export_policies(*args: str) -> str:
    out = io.StringIO()
    call_command("export_policies", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def revision() -> int:
    return PolicyRevision.objects.get(pk=1).number


def versions(slug: str) -> list[int]:
    return list(PolicyVersion.objects.filter(policy__slug=slug).order_by("number").values_list("number", flat=True))


def import_errors(document: Any) -> list[str]:
    with pytest.raises(PackError) as exc:
        pack_import(document=document)
    return exc.value.errors


def offer_ids(slug: str) -> list[int]:
    return list(OfferTemplate.objects.filter(policy__slug=slug).order_by("order", "pk").values_list("pk", flat=True))


def assert_same_content(original: Any, exported: Any, where: str = "pack") -> None:
    """Every value ``original`` gives is in ``exported``; money compares as numbers ("30" is "30.00")."""
    if isinstance(original, dict):
        for key, value in original.items():
            assert key in exported, f"{where}.{key} is missing"
            assert_same_content(value, exported[key], f"{where}.{key}")
    elif isinstance(original, list) and all(isinstance(item, dict) and "slug" in item for item in original):
        by_slug = {item["slug"]: item for item in exported}
        for item in original:
            assert_same_content(item, by_slug[item["slug"]], f"{where}[{item['slug']}]")
    elif isinstance(original, list):
        assert len(original) == len(exported), f"{where}: {original} != {exported}"
        for index, (mine, theirs) in enumerate(zip(original, exported, strict=True)):
            assert_same_content(mine, theirs, f"{where}[{index}]")
    elif isinstance(original, str) and _is_number(original):
        assert Decimal(original) == Decimal(exported), f"{where}: {original} != {exported}"
    else:
        assert original == exported, f"{where}: {original!r} != {exported!r}"


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def everything_deleted() -> None:
    Policy.objects.all().delete()
    Perk.objects.all().delete()
    Category.objects.all().delete()
    assert sum(counts().values()) == 0


# A policy that sets every field the pack format has, none at its default.
FULL_POLICY = {
    "slug": "goodwill-outage",
    "name": "Goodwill for outages",
    "description": "Outages we caused and cannot fix: make it right and escalate.",
    "active": False,
    "priority": 90,
    "placement": "lead",
    "valid_from": "2026-01-01",
    "valid_until": "2026-12-31",
    "conditions": {
        "categories": ["late_delivery", "wrong_shipping_method"],
        "severity_min": 3,
        "severity_max": 4,
        "faults": ["company", "third_party"],
        "tiers": ["silver", "gold"],
        "correctable": False,
        "min_repeat_count": 1,
        "min_same_category_repeat_count": 3,
        "min_lifetime_value": "250.50",
        "min_order_value": "20.00",
    },
    "escalate": True,
    "budget": {"monthly_cap": "1000.00", "per_customer_cap_30d": "75.25"},
    "remedy": [
        {
            "kind": "refund",
            "title": "Your {money} back",
            "message": "{first_name}, I've refunded the full {money} ({ticket}).",
            "value": "100",
            "max_amount": "800.00",
            "cost": "790.00",
            "expires_in_days": 3,
            "requires_approval": True,
        },
        {"kind": "expedited_replacement", "title": "The right item, shipped express", "value": "12.00"},
    ],
    "offers": [
        {
            "kind": "refund",
            "title": "{value}% back on this order",
            "message": "{customer_name}, we refunded {amount} {currency} for {incident}. Code {{REFUND}}.",
            "value": "12.50",
            "max_amount": "60.00",
            "cost": "55.00",
            "expires_in_days": 14,
            "requires_approval": True,
        },
        {"kind": "gift", "title": "A gift worth {amount}", "value": "15", "cost": "7.50"},
    ],
}


@pytest.fixture
def full_pack(pack) -> dict[str, Any]:
    """The small pack plus a policy, category and perk with every field set."""
    pack["categories"].append(
        {"slug": "retired_reason", "name": "Retired reason", "description": "No longer used.", "active": False}
    )
    pack["perks"].append(
        {
            "slug": "cooking-class",
            "name": "Online cooking class",
            "description": "Two hours, live.",
            "tags": ["cooking", "food-lovers"],
            "cost": "30.50",
            "active": False,
        }
    )
    pack["policies"].append(copy.deepcopy(FULL_POLICY))
    return pack


# --- Importing -------------------------------------------------------------------------


def test_importing_the_small_pack_creates_categories_perks_and_policies_at_version_1():
    output = import_policies(str(SMALL_PACK))

    assert set(Category.objects.values_list("slug", flat=True)) == {"wrong_shipping_method", "late_delivery"}
    assert list(Perk.objects.values_list("slug", "tags", "cost")) == [("sports-pass-1m", ["sports"], 12)]
    assert set(Policy.objects.values_list("slug", "version")) == {("repeat-mistake", 1), ("apology-credit", 1)}
    repeat = Policy.objects.get(slug="repeat-mistake")
    assert [c.slug for c in repeat.categories.all()] == ["wrong_shipping_method"]
    assert repeat.faults == ["company", "third_party"]
    assert str(repeat.monthly_cap) == "500.00"
    assert list(repeat.offers.values_list("kind", "order")) == [
        ("percent_discount", 0),
        ("personalized_perk", 1),
        ("escalation", 2),
    ]
    first = repeat.versions.get()
    assert (first.number, first.changes) == (1, ["created"])
    assert first.snapshot["offers"][0]["value"] == "30.00"
    assert "policies: 2 created, 0 updated, 0 unchanged" in output


def test_import_defaults_what_a_policy_leaves_out():
    import_policies(str(SMALL_PACK))
    apology = Policy.objects.get(slug="apology-credit")
    assert apology.active is True
    assert apology.escalate is False
    assert apology.categories.count() == 0
    assert (apology.severity_min, apology.monthly_cap, apology.faults) == (None, None, [])


def test_export_then_import_into_an_empty_database_gives_the_same_policies(tmp_path, full_pack):
    pack_import(document=full_pack)
    exported = export_policies()

    everything_deleted()
    import_policies(write(tmp_path, yaml.safe_load(exported)))

    assert export_policies() == exported
    assert_same_content(full_pack, pack_export())
    full = Policy.objects.get(slug="goodwill-outage")
    assert (full.active, full.escalate, full.correctable, full.priority) == (False, True, False, 90)
    assert str(full.valid_until) == "2026-12-31"
    assert full.offers.get(kind="refund").requires_approval is True


def test_export_import_export_is_identical_and_makes_no_new_versions(tmp_path, full_pack):
    pack_import(document=full_pack)
    before_counts, before_revision = counts(), revision()
    path = str(tmp_path / "exported.yaml")
    export_policies(path)

    import_policies(path)

    assert counts() == before_counts
    assert set(Policy.objects.values_list("version", flat=True)) == {1}
    assert revision() == before_revision
    assert Path(path).read_text(encoding="utf-8") == export_policies()


@pytest.mark.parametrize("how", ["json path", "--format json"])
def test_json_export_and_import_round_trip(tmp_path, full_pack, how):
    pack_import(document=full_pack)
    path = tmp_path / "exported.json"
    if how == "json path":
        export_policies(str(path))
    else:
        path.write_text(export_policies("--format", "json"), encoding="utf-8")
    exported = json.loads(path.read_text(encoding="utf-8"))
    assert exported == pack_export()

    everything_deleted()
    import_policies(str(path))

    assert pack_export() == exported


def test_json_pack_is_read_as_json(tmp_path, pack):
    path = write(tmp_path, pack, "pack.json")
    assert pack_load(path) == pack
    import_policies(path)
    assert Policy.objects.count() == 2


# --- All or nothing ------------------------------------------------------------------------


def test_a_bad_value_in_the_last_policy_writes_nothing_at_all(tmp_path, pack):
    existing = CategoryFactory(slug="late_delivery", name="Old name")
    PolicyFactory(slug="apology-credit", priority=5)
    before_counts, before_revision = counts(), revision()
    pack["categories"].append({"slug": "brand_new", "name": "Brand new"})
    pack["perks"].append({"slug": "new-perk", "name": "New perk", "cost": "3.00"})
    pack["policies"][-1]["offers"][0]["value"] = "-10"

    with pytest.raises(CommandError) as exc:
        import_policies(write(tmp_path, pack))

    assert "nothing imported" in str(exc.value)
    assert "policies[1].offers[0].value: must be 0 or more, got -10" in str(exc.value)
    assert counts() == before_counts
    assert revision() == before_revision
    existing.refresh_from_db()
    assert existing.name == "Old name"
    assert Policy.objects.get(slug="apology-credit").priority == 5
    assert not Category.objects.filter(slug="brand_new").exists()
    assert not Perk.objects.exists()


def _set(*path: Any, value: Any) -> Callable[[dict], None]:
    def change(document: dict) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _make_percent_101(document: dict) -> None:
    document["policies"][1]["offers"][0].update(kind="percent_discount", value="101", max_amount="20")


def _duplicate_policy(document: dict) -> None:
    document["policies"].append(copy.deepcopy(document["policies"][0]))


def _duplicate_category(document: dict) -> None:
    document["categories"].append({"slug": "late_delivery", "name": "Late again"})


def _drop(*path: Any) -> Callable[[dict], None]:
    def change(document: dict) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


POLICY_KEYS = (
    "active, budget, conditions, description, escalate, generosity, name, offers, placement, priority, remedy, "
    "slug, valid_from, valid_until"
)
ALLOWED = (
    "{customer_name}, {incident}, {value}, {amount}, {currency}, {perk_name}, {first_name}, {money}, {ticket}, "
    "{repeat_count}, {same_category_repeat_count}"
)

ERROR_CASES = {
    "percent above 100": (
        _make_percent_101,
        "policies[1].offers[0].value: must be between 0 and 100 for percent_discount",
    ),
    "severity out of range": (
        _set("policies", 0, "conditions", "severity_max", value=0),
        "policies[0].conditions.severity_max: must be between 1 and 5, got 0",
    ),
    "severity range reversed": (
        lambda d: d["policies"][0]["conditions"].update(severity_min=4, severity_max=2),
        "policies[0].conditions.severity_max: must be at least severity_min (4), got 2",
    ),
    "negative monthly cap": (
        _set("policies", 0, "budget", "monthly_cap", value="-5"),
        "policies[0].budget.monthly_cap: must be 0 or more, got -5",
    ),
    "negative per-customer cap": (
        _set("policies", 0, "budget", "per_customer_cap_30d", value="-0.50"),
        "policies[0].budget.per_customer_cap_30d: must be 0 or more, got -0.50",
    ),
    "negative min_lifetime_value": (
        _set("policies", 0, "conditions", "min_lifetime_value", value="-1"),
        "policies[0].conditions.min_lifetime_value: must be 0 or more, got -1",
    ),
    "priority out of range": (
        _set("policies", 1, "priority", value=101),
        "policies[1].priority: must be between 0 and 100, got 101",
    ),
    "valid_until equal to valid_from": (
        lambda d: d["policies"][1].update(valid_from="2026-03-01", valid_until="2026-03-01"),
        "policies[1].valid_until: must be after valid_from (2026-03-01), got 2026-03-01",
    ),
    "unknown policy key": (
        _set("policies", 0, "colour", value="red"),
        f"policies[0].colour: unknown field; allowed: {POLICY_KEYS}",
    ),
    "unknown condition key": (
        _set("policies", 0, "conditions", "severity", value=3),
        "policies[0].conditions.severity: unknown field; allowed: categories, correctable, faults, min_lifetime_value, "
        "min_order_value, min_repeat_count, min_same_category_repeat_count, severity_max, severity_min, tiers",
    ),
    "unknown budget key": (
        _set("policies", 0, "budget", "weekly_cap", value="10"),
        "policies[0].budget.weekly_cap: unknown field; allowed: monthly_cap, per_customer_cap_30d",
    ),
    "unknown offer key": (
        _set("policies", 1, "offers", 0, "amount", value="10"),
        "policies[1].offers[0].amount: unknown field; allowed: cost, expires_in_days, kind, max_amount, message, "
        "requires_approval, title, value",
    ),
    "unknown perk key": (
        _set("perks", 0, "price", value="1"),
        "perks[0].price: unknown field; allowed: active, cost, description, name, slug, tags",
    ),
    "unknown category key": (
        _set("categories", 1, "colour", value="red"),
        "categories[1].colour: unknown field; allowed: active, description, name, slug",
    ),
    "unknown top-level key": (
        _set("rules", value=[]),
        "pack.rules: unknown field; allowed: categories, perks, policies",
    ),
    "unknown category in conditions": (
        _set("policies", 0, "conditions", "categories", value=["wrong_shipping_method", "lost_parcel"]),
        "policies[0].conditions.categories: unknown category 'lost_parcel'; define it under categories or use one of: "
        "late_delivery, wrong_shipping_method",
    ),
    "duplicate policy slug": (
        _duplicate_policy,
        "policies[2].slug: duplicate of policies[0].slug ('repeat-mistake')",
    ),
    "duplicate category slug": (
        _duplicate_category,
        "categories[2].slug: duplicate of categories[1].slug ('late_delivery')",
    ),
    "priority as a word": (
        _set("policies", 0, "priority", value="high"),
        "policies[0].priority: must be a whole number, got 'high'",
    ),
    "priority as a malformed number": (
        _set("policies", 0, "priority", value="--5"),
        "policies[0].priority: must be a whole number, got '--5'",
    ),
    "priority as a fraction": (
        _set("policies", 0, "priority", value=7.5),
        "policies[0].priority: must be a whole number, got 7.5",
    ),
    "value as a list": (
        _set("policies", 1, "offers", 0, "value", value=[1]),
        'policies[1].offers[0].value: must be a decimal string such as "12.50", got [1]',
    ),
    "value as a word": (
        _set("policies", 1, "offers", 0, "value", value="ten"),
        "policies[1].offers[0].value: must be a decimal string such as \"12.50\", got 'ten'",
    ),
    "value not finite": (
        _set("policies", 1, "offers", 0, "value", value="NaN"),
        "policies[1].offers[0].value: must be a finite number, got 'NaN'",
    ),
    "boolean as a word": (
        _set("policies", 0, "escalate", value="yes"),
        "policies[0].escalate: must be true or false, got 'yes'",
    ),
    "date in another format": (
        _set("policies", 0, "valid_from", value="01/02/2026"),
        "policies[0].valid_from: must be a date as YYYY-MM-DD, got '01/02/2026'",
    ),
    "categories not a list": (
        _set("policies", 0, "conditions", "categories", value="wrong_shipping_method"),
        "policies[0].conditions.categories: must be a list of text values, got 'wrong_shipping_method'",
    ),
    "unknown tier": (
        _set("policies", 0, "conditions", "tiers", value=["diamond"]),
        "policies[0].conditions.tiers: unknown tier 'diamond'; allowed: standard, silver, gold, platinum",
    ),
    "unknown fault": (
        _set("policies", 0, "conditions", "faults", value=["weather"]),
        "policies[0].conditions.faults: unknown fault 'weather'; allowed: company, customer, third_party, unknown",
    ),
    "missing policy name": (_drop("policies", 1, "name"), "policies[1].name: is required"),
    "missing offer title": (_drop("policies", 1, "offers", 0, "title"), "policies[1].offers[0].title: is required"),
    "new perk without cost": (_drop("perks", 0, "cost"), "perks[0].cost: is required"),
    "negative perk cost": (_set("perks", 0, "cost", value="-1"), "perks[0].cost: must be 0 or more, got -1"),
    "perk tag with capitals": (
        _set("perks", 0, "tags", value=["Sports"]),
        "perks[0].tags: tags are lowercase words without spaces (use - or _), got Sports",
    ),
    "malformed category slug": (
        _set("categories", 0, "slug", value="Wrong Method"),
        "categories[0].slug: use lowercase letters, digits, and single - or _ between them (for example late_delivery)",
    ),
    "unknown placeholder": (
        _set("policies", 1, "offers", 0, "title", value="{amout} credit"),
        f"policies[1].offers[0].title: unknown placeholder {{amout}}; allowed: {ALLOWED}",
    ),
    "escalation without cost": (
        _drop("policies", 0, "offers", 2, "cost"),
        "policies[0].offers[2].cost: is required for escalation: what a senior manager's time is charged to the budget",
    ),
    "perk offer with a value": (
        _set("policies", 0, "offers", 1, "value", value="5"),
        "policies[0].offers[1].value: must be empty for personalized_perk; its value comes from the matched perk",
    ),
    "offers not a list": (
        _set("policies", 1, "offers", value="credit"),
        "policies[1].offers: must be a list of offers",
    ),
    "policies not a list": (_set("policies", value={"slug": "x"}), "policies: must be a list"),
    "zero expiry": (
        _set("policies", 0, "offers", 0, "expires_in_days", value=0),
        "policies[0].offers[0].expires_in_days: must be 1 day or more, got 0",
    ),
    "bad placement": (
        _set("policies", 0, "placement", value="first"),
        "policies[0].placement: must be ranked or lead, got 'first'",
    ),
    "remedy not a list": (
        _set("policies", 1, "remedy", value="refund"),
        "policies[1].remedy: must be a list of remedy offers (kind, title, message, value, ...)",
    ),
    "unknown remedy key": (
        _set("policies", 1, "remedy", value=[{"kind": "gift", "title": "A gift", "value": "5", "colour": "red"}]),
        "policies[1].remedy[0].colour: unknown field; allowed: cost, expires_in_days, kind, max_amount, message, "
        "requires_approval, title, value",
    ),
    "remedy without value": (
        _set("policies", 1, "remedy", value=[{"kind": "refund", "title": "All back"}]),
        "policies[1].remedy[0].value: is required for refund: a percent between 0 and 100",
    ),
    "remedy credit without value": (
        _set("policies", 1, "remedy", value=[{"kind": "fixed_credit", "title": "Credit"}]),
        "policies[1].remedy[0].value: is required for fixed_credit: the face value, an amount of 0 or more",
    ),
    "remedy with an unknown placeholder": (
        _set("policies", 1, "remedy", value=[{"kind": "gift", "title": "{first} back", "value": "5"}]),
        f"policies[1].remedy[0].title: unknown placeholder {{first}}; allowed: {ALLOWED}",
    ),
    **{
        f"remedy of kind {kind}": (
            _set(
                "policies",
                1,
                "remedy",
                value=[{"kind": "gift", "title": "ok", "value": "1"}, {"kind": kind, "title": "x", **extra}],
            ),
            f"policies[1].remedy[1].kind: {kind!r} cannot be a remedy; a remedy puts right what went wrong: refund, "
            "fixed_credit, free_shipping, expedited_replacement, gift (discounts, perks and escalations are options)",
        )
        for kind, extra in [
            ("escalation", {"cost": "40.00"}),
            ("personalized_perk", {}),
            ("percent_discount", {"value": "10", "max_amount": "20.00"}),
        ]
    },
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_invalid_pack_reports_the_field_path_and_what_is_allowed(pack, case):
    change, expected = ERROR_CASES[case]
    change(pack)

    errors = import_errors(pack)

    assert expected in errors
    assert sum(counts().values()) == 0


def test_every_problem_is_reported_at_once(tmp_path, pack):
    _make_percent_101(pack)
    pack["policies"][0]["priority"] = "high"
    pack["policies"][0]["budget"]["monthly_cap"] = "-1"
    pack["perks"][0]["tags"] = ["Sports"]

    with pytest.raises(CommandError) as exc:
        import_policies(write(tmp_path, pack))

    message = str(exc.value)
    assert "nothing imported: 4 problems in " in message
    for line in [
        "perks[0].tags: tags are lowercase words without spaces (use - or _), got Sports",
        "policies[0].priority: must be a whole number, got 'high'",
        "policies[0].budget.monthly_cap: must be 0 or more, got -1",
        "policies[1].offers[0].value: must be between 0 and 100 for percent_discount",
    ]:
        assert line in message.splitlines()


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (None, "pack: is empty; expected categories, perks and policies"),
        ([{"slug": "x"}], "pack: must be a mapping with keys categories, perks, policies"),
        ("policies", "pack: must be a mapping with keys categories, perks, policies"),
        ({"policies": ["repeat-mistake"]}, "policies[0]: must be a mapping with keys " + POLICY_KEYS),
    ],
)
def test_a_document_of_the_wrong_shape_is_reported(document, expected):
    assert expected in import_errors(document)


def test_a_remedy_of_another_kind_gets_one_error_that_says_what_a_remedy_may_be(pack):
    pack["policies"][1]["remedy"] = [{"kind": "escalation", "title": "A call", "cost": "40.00"}]

    errors = [e for e in import_errors(pack) if e.startswith("policies[1].remedy[0].kind")]

    assert len(errors) == 1
    assert "'escalation' cannot be a remedy" in errors[0]


def test_a_v1_pack_imports_as_before_with_placement_ranked_and_no_remedy():
    import_policies(str(SMALL_PACK))

    exported = {p["slug"]: p for p in pack_export()["policies"]}

    assert {slug: (p["placement"], p["remedy"]) for slug, p in exported.items()} == {
        "apology-credit": ("ranked", []),
        "repeat-mistake": ("ranked", []),
    }
    assert "policies: 0 created, 0 updated, 2 unchanged" in import_policies(str(SMALL_PACK))
    assert versions("repeat-mistake") == [1]


def test_a_remedy_change_is_a_new_version_with_its_change_lines(pack):
    pack_import(document=pack)
    pack["policies"][1]["placement"] = "lead"
    pack["policies"][1]["remedy"] = [{"kind": "refund", "title": "All {money} back", "value": "100"}]

    pack_import(document=pack)

    version = PolicyVersion.objects.get(policy__slug="apology-credit", number=2)
    assert version.changes == [
        "Placement: ranked → lead",  # then the remedy, in one line
        'Remedy 1 (refund) added: "All {money} back", value 100.00',
    ]
    [remedy] = RemedyTemplate.objects.filter(policy__slug="apology-credit")
    assert (remedy.kind, remedy.value, remedy.order) == ("refund", Decimal("100.00"), 0)
    pack["policies"][1]["remedy"][0]["value"] = "50"
    pack_import(document=pack)
    assert PolicyVersion.objects.get(policy__slug="apology-credit", number=3).changes == [
        "Remedy 1 (refund): value 100.00 → 50.00"
    ]
    assert RemedyTemplate.objects.get().pk == remedy.pk  # kept by position, like offers


# --- Matching by slug and versions ------------------------------------------------------------


def test_import_updates_a_policy_by_slug_with_a_new_version_instead_of_duplicating(tmp_path, pack):
    import_policies(str(SMALL_PACK))
    pack["policies"][0]["priority"] = 60
    pack["policies"][0]["offers"][0]["value"] = "35"

    output = import_policies(write(tmp_path, pack))

    assert Policy.objects.filter(slug="repeat-mistake").count() == 1
    assert Policy.objects.count() == 2
    policy = Policy.objects.get(slug="repeat-mistake")
    assert (policy.priority, policy.version) == (60, 2)
    assert versions("repeat-mistake") == [1, 2]
    latest = policy.versions.get(number=2)
    assert latest.changes == ["Priority: 50 → 60", "Offer 1 (percent discount): value 30.00 → 35.00"]
    assert latest.snapshot["priority"] == 60
    assert versions("apology-credit") == [1]
    assert "policies: 0 created, 1 updated, 1 unchanged" in output


def test_reimporting_the_same_pack_makes_no_new_version_and_writes_nothing():
    import_policies(str(SMALL_PACK))
    before_counts, before_revision = counts(), revision()
    updated_at = dict(Policy.objects.values_list("slug", "updated_at"))

    output = import_policies(str(SMALL_PACK))

    assert counts() == before_counts
    assert set(Policy.objects.values_list("version", flat=True)) == {1}
    assert dict(Policy.objects.values_list("slug", "updated_at")) == updated_at
    assert revision() == before_revision
    assert "categories: 0 created, 0 updated, 2 unchanged" in output
    assert "policies: 0 created, 0 updated, 2 unchanged" in output


def test_a_category_rename_in_a_pack_updates_it_in_place(tmp_path, pack):
    import_policies(str(SMALL_PACK))
    pack["categories"][1]["name"] = "Late delivery"

    output = import_policies(write(tmp_path, pack))

    assert Category.objects.get(slug="late_delivery").name == "Late delivery"
    assert Category.objects.count() == 2
    assert "categories: 0 created, 1 updated, 1 unchanged" in output
    assert set(Policy.objects.values_list("version", flat=True)) == {1}


def test_replace_deactivates_active_policies_the_pack_does_not_name():
    stale = PolicyFactory(slug="old-goodwill")
    policy_version_record(policy=stale)
    retired = PolicyFactory(slug="retired", active=False)
    policy_version_record(policy=retired)

    output = import_policies(str(SMALL_PACK), "--replace")

    stale.refresh_from_db()
    assert stale.active is False
    assert versions("old-goodwill") == [1, 2]
    last = stale.versions.get(number=2)
    assert last.changes == ["Active: yes → no"]
    assert last.snapshot["active"] is False
    assert "--replace" in last.reason
    assert versions("retired") == [1]
    assert set(Policy.objects.filter(active=True).values_list("slug", flat=True)) == {
        "repeat-mistake",
        "apology-credit",
    }
    assert "policies deactivated (not in pack): old-goodwill" in output


def test_replace_leaves_named_policies_alone():
    import_policies(str(SMALL_PACK))
    import_policies(str(SMALL_PACK), "--replace")
    assert set(Policy.objects.values_list("slug", "active", "version")) == {
        ("repeat-mistake", True, 1),
        ("apology-credit", True, 1),
    }


def test_without_replace_policies_missing_from_the_pack_stay_active():
    other = PolicyFactory(slug="old-goodwill")
    import_policies(str(SMALL_PACK))
    other.refresh_from_db()
    assert other.active is True


def test_a_pack_may_name_categories_already_in_the_database_without_repeating_them(pack):
    CategoryFactory(slug="lost_parcel", name="Lost parcel")
    import_policies(str(SMALL_PACK))
    document = {"policies": [{**pack["policies"][1], "conditions": {"categories": ["lost_parcel", "late_delivery"]}}]}

    pack_import(document=document)

    policy = Policy.objects.get(slug="apology-credit")
    assert sorted(policy.categories.values_list("slug", flat=True)) == ["late_delivery", "lost_parcel"]
    assert Category.objects.get(slug="lost_parcel").name == "Lost parcel"
    assert policy.version == 2


def test_offers_keep_their_ids_when_updated_in_place_and_surplus_offers_are_deleted(pack):
    pack_import(document=pack)
    first, second, third = offer_ids("repeat-mistake")
    pack["policies"][0]["offers"][0]["value"] = "40"
    del pack["policies"][0]["offers"][2]

    pack_import(document=pack)

    assert offer_ids("repeat-mistake") == [first, second]
    assert OfferTemplate.objects.get(pk=first).value == 40
    assert not OfferTemplate.objects.filter(pk=third).exists()
    latest = Policy.objects.get(slug="repeat-mistake").versions.get(number=2)
    assert latest.changes == [  # the value, and the removed offer
        "Offer 1 (percent discount): value 30.00 → 40.00",
        'Offer 3 (escalation) removed: "A senior manager will call you personally today"',
    ]


def test_an_added_offer_is_created_and_the_others_keep_their_ids(pack):
    pack_import(document=pack)
    (credit,) = offer_ids("apology-credit")
    pack["policies"][1]["offers"].append({"kind": "gift", "title": "A small gift", "value": "5"})

    pack_import(document=pack)

    ids = offer_ids("apology-credit")
    assert ids[0] == credit
    assert len(ids) == 2
    assert OfferTemplate.objects.get(pk=ids[1]).kind == "gift"


def test_import_of_a_policy_created_outside_packs_gives_it_its_first_version(pack):
    # A policy that was never versioned is written even when its content already matches the pack.
    policy = PolicyFactory(slug="apology-credit", name="Apology credit", priority=20)
    OfferTemplateFactory(policy=policy, title="{amount} {currency} credit", message="", value=10, order=0)

    pack_import(document={"policies": [pack["policies"][1]]})

    assert versions("apology-credit") == [1]


# --- Reading files --------------------------------------------------------------------------------


def test_import_reads_standard_input_for_a_dash(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(SMALL_PACK.read_text(encoding="utf-8")))

    output = import_policies("-")

    assert Policy.objects.count() == 2
    assert "policies: 2 created" in output


def test_bad_standard_input_is_reported_as_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("policies: [\n"))
    with pytest.raises(CommandError, match=r"<stdin>: invalid YAML at line \d+, column \d+"):
        import_policies("-")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("broken.yaml", "policies:\n  - slug: a\n   name: b\n", r"broken\.yaml: invalid YAML at line 3, column \d+"),
        ("broken.yaml", "policies: [\n", r"broken\.yaml: invalid YAML at line \d+"),
        ("date.yaml", "policies:\n  - slug: a\n    valid_from: 2026-13-01\n", r"date\.yaml: invalid YAML: .*month"),
        ("broken.json", '{"policies": [}', r"broken\.json: invalid JSON at line 1, column 15"),
        ("empty.yaml", "", r"pack: is empty"),
        ("list.yaml", "- a\n- b\n", r"pack: must be a mapping"),
        ("unsafe.yaml", "policies: !!python/object/apply:os.system [true]\n", r"unsafe\.yaml: invalid YAML"),
    ],
)
def test_an_unreadable_pack_is_a_clear_command_error(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    with pytest.raises(CommandError, match=expected) as exc:
        import_policies(str(path))

    assert str(exc.value).startswith(f"nothing imported: 1 problem in {path}")
    assert sum(counts().values()) == 0


def test_a_missing_file_is_a_clear_command_error(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(CommandError, match=r"nope\.yaml: cannot read the file \(No such file or directory\)"):
        import_policies(str(path))


def test_a_file_that_is_not_utf8_is_a_clear_command_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("categories:\n  - slug: cafe\n    name: Caf\xe9\n".encode("latin-1"))
    with pytest.raises(CommandError, match=r"latin1\.yaml: is not UTF-8 text"):
        import_policies(str(path))


# --- Exporting ------------------------------------------------------------------------------------


def test_export_without_a_path_writes_only_the_pack_to_standard_output(full_pack):
    pack_import(document=full_pack)
    out, err = io.StringIO(), io.StringIO()

    call_command("export_policies", stdout=out, stderr=err)

    document = yaml.safe_load(out.getvalue())
    assert document == pack_export()
    assert list(document) == ["categories", "perks", "policies"]
    assert [p["slug"] for p in document["policies"]] == ["apology-credit", "goodwill-outage", "repeat-mistake"]
    assert err.getvalue() == ""


def test_export_to_a_path_writes_the_file_and_nothing_to_standard_output(tmp_path):
    import_policies(str(SMALL_PACK))
    path = tmp_path / "out.yaml"

    assert export_policies(str(path)) == ""
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == pack_export()


def test_export_keeps_money_as_decimal_strings(tmp_path):
    import_policies(str(SMALL_PACK))
    document = json.loads(export_policies("--format", "json"))
    repeat = next(p for p in document["policies"] if p["slug"] == "repeat-mistake")
    assert repeat["offers"][0]["value"] == "30.00"
    assert repeat["budget"] == {"monthly_cap": "500.00", "per_customer_cap_30d": "100.00"}
    assert document["perks"][0]["cost"] == "12.00"


def test_export_to_an_unwritable_path_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="cannot write"):
        export_policies(str(tmp_path / "missing-dir" / "out.yaml"))


def test_a_nul_character_in_a_pack_is_reported_with_its_path_and_nothing_is_written():
    from policies.packs import PackError, pack_import

    document = {"categories": [{"slug": "late_delivery", "name": "late\x00delivery"}]}
    with pytest.raises(PackError) as excinfo:
        pack_import(document=document)
    assert "categories[0].name: must not contain NUL characters" in excinfo.value.errors
    assert not Category.objects.exists()
