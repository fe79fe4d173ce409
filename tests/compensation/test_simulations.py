"""Simulating a policy pack (API.md v2, "Policy lifecycle"): figures computed by hand on a small fixture.

Three live policies, twelve stored incidents (eleven in the 30-day window), two customers, no learning
counters yet: every option's propensity mean is the prior, 1/3, shown as 0.3333. The draft raises
late-credit's credit from 10.00 to 15.00, lowers damaged-refund's lowest severity from 3 to 2 and adds a
platinum-only policy that matches nobody; gold-discount is not in the pack and stays live.
"""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.apps import apps
from django.core.management import CommandError, call_command

from compensation.models import Customer, Incident, PolicyMonthSpend
from compensation.services.simulations import SimulationError, simulate_policies
from policies.models import PolicyRevision
from policies.packs import PackError, pack_import

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

LIVE = {
    "categories": [
        {"slug": "late_delivery", "name": "late delivery"},
        {"slug": "damaged_item", "name": "damaged item"},
    ],
    "policies": [
        {
            "slug": "late-credit",
            "name": "Late credit",
            "conditions": {"categories": ["late_delivery"]},
            "budget": {"monthly_cap": "50.00"},
            "offers": [{"kind": "fixed_credit", "title": "A {value} credit", "value": "10.00"}],
        },
        {
            "slug": "gold-discount",
            "name": "Gold discount",
            "conditions": {"tiers": ["gold"]},
            "offers": [
                {"kind": "percent_discount", "title": "{value}% off", "value": "20", "max_amount": "30.00"},
                {"kind": "personalized_perk", "title": "{perk_name} on us"},
            ],
        },
        {
            "slug": "damaged-refund",
            "name": "Damaged refund",
            "conditions": {"categories": ["damaged_item"], "severity_min": 3},
            "remedy": [{"kind": "gift", "title": "A small gift", "value": "5.00"}],
            "offers": [{"kind": "refund", "title": "{value}% back", "value": "50"}],
        },
    ],
}


def draft() -> dict:
    pack = {"policies": copy.deepcopy([LIVE["policies"][0], LIVE["policies"][2]])}
    pack["policies"][0]["offers"][0]["value"] = "15.00"
    pack["policies"][1]["conditions"]["severity_min"] = 2
    pack["policies"].append(
        {
            "slug": "platinum-only",
            "name": "Platinum only",
            "conditions": {"tiers": ["platinum"]},
            "offers": [{"kind": "gift", "title": "A gift", "value": "8.00"}],
        }
    )
    return pack


# (customer, category, severity, order value, days before NOW)
INCIDENTS = [
    ("c1", "late_delivery", 1, "40", 1),  # 1: credit 10 -> 15
    ("c1", "late_delivery", 3, "80", 2),  # 2: credit 10 -> 15
    ("c2", "late_delivery", 2, "100", 3),  # 3: credit 10 -> 15, discount 20
    ("c2", "late_delivery", 1, "200", 4),  # 4: credit 10 -> 15, discount 30 (capped)
    ("c1", "damaged_item", 3, "60", 5),  # 5: refund 30 + gift, unchanged
    ("c1", "damaged_item", 2, "60", 6),  # 6: nothing -> refund 30 + gift
    ("c1", "damaged_item", 1, "100", 7),  # 7: nothing either side
    ("c2", "damaged_item", 2, "50", 8),  # 8: discount 10 -> refund 25, discount 10, gift
    ("c2", "damaged_item", 4, "120", 9),  # 9: refund 60, discount 24, gift, unchanged
    ("c1", "damaged_item", 5, "10", 10),  # 10: refund 5 + gift, unchanged
    ("c2", "late_delivery", 1, "0", 11),  # 11: credit 10 -> 15, discount 30 (an order of 0: the cap)
    ("c1", "late_delivery", 2, "20", 40),  # 12: outside the 30-day window
]


@pytest.fixture
def world(db) -> list[Incident]:
    return seed_world()


def seed_world(now: datetime = NOW) -> list[Incident]:
    """The live pack, two customers, the twelve incidents dated back from ``now``, and late-credit's spend: 40.00
    this month, 45.00 the month before (which does not count)."""
    from policies.models import Category, Policy

    pack_import(document=LIVE)
    customers = {
        "c1": Customer.objects.create(external_id="c1", name="Ann Smith", tier="standard"),
        "c2": Customer.objects.create(external_id="c2", name="Bo Gold", tier="gold"),
    }
    categories = {c.slug: c for c in Category.objects.all()}
    stored = []
    for external_id, category, severity, order_value, days_ago in INCIDENTS:
        at = now - timedelta(days=days_ago)
        incident = Incident.objects.create(
            customer=customers[external_id],
            category=categories[category],
            severity=severity,
            order_value=Decimal(order_value),
            currency="USD",
            occurred_at=at,
        )
        Incident.objects.filter(pk=incident.pk).update(created_at=at)
        stored.append(incident)
    month = now.date().replace(day=1)
    credit = Policy.objects.get(slug="late-credit")
    PolicyMonthSpend.objects.create(policy=credit, month=month, spent=Decimal("40.00"))
    PolicyMonthSpend.objects.create(
        policy=credit, month=(month - timedelta(days=1)).replace(day=1), spent=Decimal("45.00")
    )
    return stored


def row_counts() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def test_figures_by_hand(world):
    result = simulate_policies(draft(), days=30, now=NOW)

    assert result["days"] == 30
    assert result["incidents"] == 11
    assert result["changed"] == 7  # incidents 1, 2, 3, 4, 6, 8 and 11
    assert result["no_options_before"] == 2  # 6 and 7
    assert result["no_options_after"] == 1  # 7
    # Options: 259.00 before and 339.00 after, times 0.3333; remedies (gifts of 5.00): 3 before, 5 after.
    assert result["expected_cost_before"] == "101.32"  # 86.3247 + 15
    assert result["expected_cost_after"] == "137.99"  # 112.9887 + 25

    rows = {row["slug"]: row for row in result["policies"]}
    assert list(rows) == ["damaged-refund", "gold-discount", "late-credit", "platinum-only"]
    assert rows["late-credit"] == {
        "slug": "late-credit",
        "shown_before": 5,
        "shown_after": 5,
        "expected_cost_before": "16.67",  # 50 x 0.3333 = 16.665
        "expected_cost_after": "25.00",  # 75 x 0.3333 = 24.9975
        "monthly_cap": "50.00",
        "month_spent": "40.00",
        # 24.9975 / 30 = 0.83325 a day, 21 days left after March 10: 40 + 17.49825
        "projected_month_spend": "57.50",
        # 40 + 0.83325 x 12 = 49.999 does not pass 50.00; 13 days later (March 23) it does
        "cap_reached_on": "2026-03-23",
    }
    assert rows["gold-discount"]["shown_before"] == rows["gold-discount"]["shown_after"] == 5
    assert rows["gold-discount"]["expected_cost_before"] == rows["gold-discount"]["expected_cost_after"] == "38.00"
    assert rows["gold-discount"]["monthly_cap"] is None
    assert rows["gold-discount"]["month_spent"] == "0.00"
    assert rows["gold-discount"]["cap_reached_on"] is None
    # 37.9962 / 30 x 21 = 26.59734
    assert rows["gold-discount"]["projected_month_spend"] == "26.60"
    assert (rows["damaged-refund"]["shown_before"], rows["damaged-refund"]["shown_after"]) == (3, 5)
    assert rows["damaged-refund"]["expected_cost_before"] == "31.66"  # 95 x 0.3333 = 31.6635
    assert rows["damaged-refund"]["expected_cost_after"] == "50.00"  # 150 x 0.3333 = 49.995
    assert rows["platinum-only"]["shown_before"] == rows["platinum-only"]["shown_after"] == 0

    assert result["warnings"] == [
        "policy 'platinum-only' matches none of the 11 incidents of the last 30 days",
        "policy 'gold-discount': offer 2 (Personalized perk (matched to interests), '{perk_name} on us') is never "
        "shown",
        "policy 'late-credit': projected spend 57.50 passes its monthly cap 50.00 on 2026-03-23",
    ]

    incident_ids = [incident.pk for incident in world]
    assert [example["incident"] for example in result["examples"]] == [
        incident_ids[i - 1] for i in (1, 2, 3, 4, 6, 8, 11)
    ]
    first = result["examples"][0]
    assert first["before"] == [
        {
            "label": "a",
            "kind": "fixed_credit",
            "title": "A 10 credit",
            "policy": "late-credit",
            "estimated_cost": "10.00",
        }
    ]
    assert first["after"] == [
        {
            "label": "a",
            "kind": "fixed_credit",
            "title": "A 15 credit",
            "policy": "late-credit",
            "estimated_cost": "15.00",
        }
    ]
    sixth = result["examples"][4]
    assert sixth["before"] == []
    assert sixth["after"] == [
        {"label": "a", "kind": "refund", "title": "50% back", "policy": "damaged-refund", "estimated_cost": "30.00"}
    ]


def test_nothing_is_written_and_the_live_index_is_untouched(world):
    from policies.index import policy_index_get

    counts, revision = row_counts(), list(PolicyRevision.objects.values_list("number", flat=True))
    live = policy_index_get()
    simulate_policies(draft(), days=30, now=NOW)
    assert row_counts() == counts
    assert list(PolicyRevision.objects.values_list("number", flat=True)) == revision
    assert policy_index_get() is live
    credit = next(p for p in live.policies.values() if p.slug == "late-credit")
    assert credit.offers[0].value == Decimal("10.00")
    assert "platinum-only" not in {p.slug for p in live.policies.values()}


def test_a_pack_that_changes_nothing_changes_nothing(world):
    result = simulate_policies({"policies": copy.deepcopy(LIVE["policies"])}, days=30, now=NOW)
    assert result["changed"] == 0
    assert result["expected_cost_before"] == result["expected_cost_after"] == "101.32"


def test_draft_matches_by_slug_and_does_not_replace(world):
    """A pack naming only late-credit leaves gold-discount and damaged-refund live in "after"."""
    pack = {"policies": [copy.deepcopy(LIVE["policies"][0])]}
    pack["policies"][0]["active"] = False
    result = simulate_policies(pack, days=30, now=NOW)
    rows = {row["slug"]: row for row in result["policies"]}
    assert rows["late-credit"]["shown_after"] == 0
    assert rows["gold-discount"]["shown_after"] == 5
    assert rows["damaged-refund"]["shown_after"] == 3
    assert result["changed"] == 5  # the five late deliveries lose their credit
    assert result["no_options_after"] == 4  # 1, 2 (no credit, not gold), 6, 7


def test_replay_is_the_request_path_ranking(world, settings):
    """Each replayed incident's options equal what compute_options gives it with exploration off and no budgets."""
    from compensation import engine, learning
    from compensation.engine_types import Spending
    from compensation.services.simulations import _facts, replay_prepare
    from policies.index import policy_index_get

    replay = replay_prepare({"policies": []}, days=30, now=NOW)
    index = policy_index_get()
    for _pk, currency, customer, incident in _facts(replay, None, None):
        direct = engine.compute_options(
            index=index,
            customer=customer,
            incident=incident,
            spending=Spending(),
            stats=learning.LearningStats(),
            currency=currency,
            approval_limit=None,
            mode=learning.LearningMode(exploration=False, correction=True),
        )
        replayed = engine.replay(
            index=index, customer=customer, incident=incident, stats=learning.LearningStats(), correction=True
        )
        assert [(o.candidate.offer.id, o.score) for o in direct.options] == [
            (item.candidate.offer.id, item.score) for item in replayed.options
        ]
        assert [r.candidate.offer.id for r in direct.remedy] == [c.offer.id for c in replayed.remedies]


@pytest.mark.parametrize("days", [0, 366, -1, True, "30"])
def test_days_out_of_range(world, days):
    with pytest.raises(SimulationError, match="days must be a whole number from 1 to 365"):
        simulate_policies(draft(), days=days, now=NOW)


def test_a_pack_that_would_not_import_fails_with_its_errors(world):
    bad = draft()
    bad["policies"][0]["offers"][0]["value"] = "lots"
    bad["policies"][1]["conditions"]["categories"] = ["nope"]
    counts = row_counts()
    with pytest.raises(PackError) as caught:
        simulate_policies(bad, days=30, now=NOW)
    assert caught.value.errors[0].startswith("policies[0].offers[0].value: must be a decimal string")
    assert caught.value.errors[1].startswith("policies[1].conditions.categories: unknown category 'nope'")
    assert row_counts() == counts


@time_machine.travel(NOW, tick=False)
def test_command_json_and_errors(world, tmp_path):
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(draft()))
    out = io.StringIO()
    call_command("simulate_policies", str(path), "--days", "365", "--json", "--workers", "1", stdout=out)
    result = json.loads(out.getvalue())
    assert set(result) == {
        "days",
        "incidents",
        "changed",
        "no_options_before",
        "no_options_after",
        "expected_cost_before",
        "expected_cost_after",
        "policies",
        "warnings",
        "examples",
    }
    assert result["days"] == 365
    assert result["incidents"] == 12
    credit = {row["slug"]: row for row in result["policies"]}["late-credit"]
    # Six credits of 15.00 (incident 12 is in a 365-day window): 29.997 over 365 days, 21 days left.
    assert (credit["projected_month_spend"], credit["cap_reached_on"]) == ("41.73", None)

    text = io.StringIO()
    call_command("simulate_policies", str(path), "--workers", "1", stdout=text)
    assert "Replayed" in text.getvalue()
    assert "late-credit" in text.getvalue()

    for days in ("0", "366", "x"):
        with pytest.raises(CommandError, match="--days must be a whole number from 1 to 365"):
            call_command("simulate_policies", str(path), "--days", days)
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies:\n  - slug: x\n")
    with pytest.raises(CommandError, match=r"nothing simulated: 1 problem in .*\npolicies\[0\]\.name: is required"):
        call_command("simulate_policies", str(bad))


@pytest.mark.django_db(transaction=True)
def test_forked_workers_add_up_to_one_process(monkeypatch):
    """Replayed in two forked processes (each with its own connection), the figures are one process's."""
    from tests.conftest import postgres_needed

    postgres_needed("forked processes read the committed incidents over their own connections")
    from compensation.services import simulations

    seed_world()
    one = simulate_policies(draft(), days=30, now=NOW, workers=1)
    monkeypatch.setattr(simulations, "MIN_PER_WORKER", 1)
    progress: list[float] = []
    two = simulate_policies(draft(), days=30, now=NOW, workers=2, progress=progress.append)
    assert two == one
    # The window's 12 ids in ranges of 2 (four ranges a process asked for, rounded up): six reports.
    assert progress == [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0]


def test_no_incidents_in_the_window_is_one_warning(world):
    """A day between the incidents 11 and 40 days old: nothing to replay, said once, not "matches none" per policy."""
    result = simulate_policies(draft(), days=1, now=NOW - timedelta(days=20))
    assert result["incidents"] == 0
    assert result["warnings"] == ["no incident was created in the last 1 days: there was nothing to replay"]
    assert [row["slug"] for row in result["policies"]] == [
        "damaged-refund",
        "gold-discount",
        "late-credit",
        "platinum-only",
    ]
