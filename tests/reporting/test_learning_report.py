"""``GET /api/v1/reports/learning/`` (API.md v2, "Learning that can be trusted") against hand-computed figures.

The counters are written directly (``AcceptanceStat``, ``PositionStat``, several shards each), so the
figures below follow from API.md's formulas by hand:

- ``share[p]`` = the category's recorded outcomes choosing p / its recorded outcomes;
- ``expected`` = Σ_p shown_at[p] × share[p] (correction on) or shown × p0 (off), p0 = 1/3, m = 2;
- the posterior is Beta(chosen + m, max(0.5, (expected + m) / p0 − chosen − m)), so
  ``propensity_mean`` = p0 × (chosen + m) / (expected + m) while below 1 (off: (chosen + 2) / (shown + 6)).

The end-to-end test at the bottom makes offer sets and records outcomes through the API instead.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import mpmath
import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from compensation.models import AcceptanceStat, PositionStat
from policies.choices import OfferKind
from policies.models import Category, OfferTemplate
from reporting.learning import learning_rows
from reporting.serializers import LearningReportSerializer
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory
from tests.reporting.catalog import Catalog
from tests.reporting.test_reports_api import label_of, offer_set_post, outcome_post

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/learning/"
ROW_KEYS = {"policy", "offer", "category", "shown", "shown_at", "chosen", "expected", "propensity_mean", "interval"}


def sig4(value: float) -> float:
    """Four significant digits, as API.md has options show figures."""
    return float(f"{value:.4g}")


def counters(template: OfferTemplate, category: Category, shard: int, *, a=0, b=0, c=0, chosen=0) -> None:
    AcceptanceStat.objects.create(
        offer_template=template,
        category=category,
        shard=shard,
        offered=a + b + c,
        shown_a=a,
        shown_b=b,
        shown_c=c,
        chosen=chosen,
    )


def positions(category: Category, shard: int, *, outcomes: int, a: int, b: int, c: int) -> None:
    PositionStat.objects.create(category=category, shard=shard, outcomes=outcomes, chosen_a=a, chosen_b=b, chosen_c=c)


class Model:
    """The fixture's objects, by the names the tables below use."""

    def __init__(self) -> None:
        self.late = CategoryFactory(slug="late_delivery", name="Late delivery")
        self.damaged = CategoryFactory(slug="damaged_item", name="Damaged item")
        self.alpha = PolicyFactory(name="Alpha credit")
        self.beta = PolicyFactory(name="Beta shipping")
        new = OfferTemplateFactory
        self.t1 = new(policy=self.alpha, kind=OfferKind.FIXED_CREDIT, title="{amount} {currency} credit")
        self.t2 = new(policy=self.beta, kind=OfferKind.FREE_SHIPPING, title="Free shipping", value=Decimal("25.00"))
        self.t3 = new(policy=self.alpha, kind=OfferKind.PERCENT_DISCOUNT, title="{value}% off", value=Decimal("15"))
        self.t4 = new(policy=self.beta, kind=OfferKind.GIFT, title="A gift", value=Decimal("8.00"))
        self.t5 = new(policy=self.alpha, kind=OfferKind.FIXED_CREDIT, title="Second credit", value=Decimal("5.00"))
        self.never = new(policy=self.beta, kind=OfferKind.FIXED_CREDIT, title="Never shown")
        self.unrecorded = new(policy=self.beta, kind=OfferKind.FIXED_CREDIT, title="No counters at all")
        self.deleted = new(policy=self.alpha, kind=OfferKind.FIXED_CREDIT, title="Deleted since")


@pytest.fixture
def model(db: None) -> Model:
    """The counters, summed over their shards:

    Position shares. late: 100 outcomes (60 in shard 0, 40 in shard 3), 50 chose a, 30 b, 10 c →
    0.5 / 0.3 / 0.1. damaged: 10 outcomes, 4 a, 2 b, 2 c → 0.4 / 0.2 / 0.2.

    ========  =======  ======  =========  ==========  ======  ===================================  ======
    template  policy   cat.    shards     a / b / c   chosen  expected                             mean
    ========  =======  ======  =========  ==========  ======  ===================================  ======
    t1        Alpha    late    0 and 5    16 / 4 / 0  10      16×0.5 + 4×0.3 = 9.2                 0.3571
    t2        Beta     late    2          4 / 10 / 6  10      4×0.5 + 10×0.3 + 6×0.1 = 5.6         0.5263
    t3        Alpha    late    1          0 / 0 / 5   0       5×0.1 = 0.5                          0.2667
    t4        Beta     late    4 and 7    0 / 0 / 10  6       10×0.1 = 1                           0.8889
    t1        Alpha    damaged 1          3 / 1 / 0   2       3×0.4 + 1×0.2 = 1.4                  0.3922
    t5        Alpha    damaged 6          3 / 1 / 0   2       1.4                                  0.3922
    never     Beta     late    2          0 / 0 / 0   0       (never shown: no row)
    deleted   Alpha    late    0          9 / 0 / 0   9       (template deleted: no row)
    ========  =======  ======  =========  ==========  ======  ===================================  ======

    Means: p0 × (chosen + 2) / (expected + 2): t1 12 / 11.2 / 3 = 0.357142…; t2 12 / 7.6 / 3 = 0.526315…;
    t3 2 / 2.5 / 3 = 0.266666…; t4 8 / 3 / 3 = 0.888888…; damaged 4 / 3.4 / 3 = 0.392156….
    t2 was chosen as often as t1 but mostly at b and c, where fewer choices are expected: it ends higher.
    """
    m = Model()
    positions(m.late, 0, outcomes=60, a=30, b=18, c=6)
    positions(m.late, 3, outcomes=40, a=20, b=12, c=4)
    positions(m.damaged, 1, outcomes=10, a=4, b=2, c=2)
    counters(m.t1, m.late, 0, a=10, b=2, chosen=6)
    counters(m.t1, m.late, 5, a=6, b=2, chosen=4)
    counters(m.t2, m.late, 2, a=4, b=10, c=6, chosen=10)
    counters(m.t3, m.late, 1, c=5)
    counters(m.t4, m.late, 4, c=4, chosen=2)
    counters(m.t4, m.late, 7, c=6, chosen=4)
    counters(m.t1, m.damaged, 1, a=3, b=1, chosen=2)
    counters(m.t5, m.damaged, 6, a=3, b=1, chosen=2)
    counters(m.never, m.late, 2)
    counters(m.deleted, m.late, 0, a=9, chosen=9)
    m.deleted.delete()
    return m


def get_ok(client: Any, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    response = client.get(URL, params or {})
    assert response.status_code == 200, response.content
    return response.json()


def key(row: dict[str, Any]) -> tuple[str, int]:
    return (row["category"], row["offer"]["id"])


def figures(row: dict[str, Any]) -> tuple:
    return (row["shown"], tuple(row["shown_at"].values()), row["chosen"], row["expected"], row["propensity_mean"])


# --- Figures --------------------------------------------------------------------------------------


def test_one_row_per_template_and_category_with_the_hand_computed_figures(model: Model, analyst: Any) -> None:
    m = model
    rows = get_ok(analyst)

    assert [key(row) for row in rows] == [
        # damaged_item first (by slug); t1 and t5 tie on the mean and the policy: by offer id.
        ("damaged_item", m.t1.pk),
        ("damaged_item", m.t5.pk),
        # late_delivery by propensity_mean, highest first.
        ("late_delivery", m.t4.pk),
        ("late_delivery", m.t2.pk),
        ("late_delivery", m.t1.pk),
        ("late_delivery", m.t3.pk),
    ]
    by_key = {key(row): figures(row) for row in rows}
    assert by_key == {
        ("damaged_item", m.t1.pk): (4, (3, 1, 0), 2, 1.4, 0.3922),
        ("damaged_item", m.t5.pk): (4, (3, 1, 0), 2, 1.4, 0.3922),
        ("late_delivery", m.t4.pk): (10, (0, 0, 10), 6, 1.0, 0.8889),
        ("late_delivery", m.t2.pk): (20, (4, 10, 6), 10, 5.6, 0.5263),
        ("late_delivery", m.t1.pk): (20, (16, 4, 0), 10, 9.2, 0.3571),
        ("late_delivery", m.t3.pk): (5, (0, 0, 5), 0, 0.5, 0.2667),
    }


def test_a_row_names_its_policy_offer_template_and_category_slug(model: Model, manager: Any) -> None:
    m = model
    row = next(row for row in get_ok(manager) if key(row) == ("late_delivery", m.t3.pk))

    assert set(row) == ROW_KEYS
    assert row["policy"] == {"id": m.alpha.pk, "name": "Alpha credit"}
    assert row["offer"] == {"id": m.t3.pk, "kind": "percent_discount", "title": "{value}% off"}  # as stored
    assert row["category"] == "late_delivery"
    assert row["shown_at"] == {"a": 0, "b": 0, "c": 5}


def test_rows_have_the_types_the_schema_declares(model: Model, manager: Any) -> None:
    rows = get_ok(manager)

    serializer = LearningReportSerializer(data=rows, many=True)
    assert serializer.is_valid(), serializer.errors
    for row in rows:
        assert isinstance(row["expected"], float)
        assert isinstance(row["propensity_mean"], float)
        assert len(row["interval"]) == 2
        assert row["shown"] == sum(row["shown_at"].values())


def test_never_shown_and_deleted_templates_have_no_row(model: Model, manager: Any) -> None:
    offers = {row["offer"]["id"] for row in get_ok(manager)}

    assert model.never.pk not in offers  # a counter row of zeros
    assert model.unrecorded.pk not in offers  # no counters at all
    assert not AcceptanceStat.objects.filter(offer_template_id=model.deleted.pk).exists()
    assert len(offers) == 5


def test_a_template_in_several_shards_is_one_row_with_their_sums(model: Model, manager: Any) -> None:
    rows = [row for row in get_ok(manager) if key(row) == ("late_delivery", model.t4.pk)]

    assert len(rows) == 1  # shards 4 and 7
    assert (rows[0]["shown_at"], rows[0]["chosen"]) == ({"a": 0, "b": 0, "c": 10}, 6)


def test_an_offer_chosen_as_often_at_lower_positions_ends_higher(model: Model, manager: Any) -> None:
    rows = {key(row): row for row in get_ok(manager)}
    t1, t2 = rows["late_delivery", model.t1.pk], rows["late_delivery", model.t2.pk]

    assert (t1["shown"], t1["chosen"]) == (t2["shown"], t2["chosen"]) == (20, 10)
    assert t2["propensity_mean"] > t1["propensity_mean"]


def test_the_interval_has_5_percent_of_the_posterior_on_each_side(model: Model, manager: Any) -> None:
    """mpmath's regularized incomplete beta function, an implementation of its own, at the returned bounds."""
    for row in get_ok(manager):
        alpha = row["chosen"] + 2
        beta = max(0.5, (row["expected"] + 2) * 3 - row["chosen"] - 2)
        low, high = row["interval"]

        assert 0 < low < row["propensity_mean"] < high < 1, row
        # The bounds have 4 significant digits: the CDF there is within a density × half a digit of 5% / 95%.
        assert float(mpmath.betainc(alpha, beta, 0, low, regularized=True)) == pytest.approx(0.05, abs=1e-3), row
        assert float(mpmath.betainc(alpha, beta, 0, high, regularized=True)) == pytest.approx(0.95, abs=1e-3), row


def test_the_interval_of_a_beta_with_one_as_second_parameter_is_its_closed_form(model: Model, manager: Any) -> None:
    """t4: alpha = 6 + 2 = 8, beta = (1 + 2) × 3 − 6 − 2 = 1. Beta(8, 1) has CDF x^8, so its quantiles
    are q^(1/8): 0.05^(1/8) = 0.687656…, 0.95^(1/8) = 0.993608…."""
    row = next(row for row in get_ok(manager) if key(row) == ("late_delivery", model.t4.pk))

    assert row["interval"] == [0.6877, 0.9936]
    assert row["interval"] == [sig4(0.05 ** (1 / 8)), sig4(0.95 ** (1 / 8))]
    assert row["propensity_mean"] == sig4(8 / 9)


@override_settings(RANKING_POSITION_CORRECTION="off")
def test_without_position_correction_the_figures_are_v1s(model: Model, manager: Any) -> None:
    """expected = shown / 3; mean = (chosen + 2) / (shown + 6): t1 and t2 12 / 26 = 0.461538…, t3 2 / 11 =
    0.181818…, t4 8 / 16 = 0.5, damaged 4 / 10 = 0.4. Posterior v1's Beta(chosen + 2, shown − chosen + 4)."""
    m = model
    rows = get_ok(manager)

    assert [(key(row), row["expected"], row["propensity_mean"]) for row in rows] == [
        (("damaged_item", m.t1.pk), 1.3333, 0.4),
        (("damaged_item", m.t5.pk), 1.3333, 0.4),
        (("late_delivery", m.t4.pk), 3.3333, 0.5),
        (("late_delivery", m.t1.pk), 6.6667, 0.4615),  # t1 and t2 tie: Alpha's id is lower
        (("late_delivery", m.t2.pk), 6.6667, 0.4615),
        (("late_delivery", m.t3.pk), 1.6667, 0.1818),
    ]
    t4 = rows[2]
    assert t4["interval"][0] + t4["interval"][1] == pytest.approx(1.0, abs=2e-4)  # Beta(8, 8) is symmetric
    for row in rows:
        alpha, beta = row["chosen"] + 2, row["shown"] - row["chosen"] + 4
        low, high = row["interval"]
        assert float(mpmath.betainc(alpha, beta, 0, low, regularized=True)) == pytest.approx(0.05, abs=1e-3), row
        assert float(mpmath.betainc(alpha, beta, 0, high, regularized=True)) == pytest.approx(0.95, abs=1e-3), row


def test_a_category_without_position_counters_expects_nothing(db: None, manager: Any) -> None:
    """Shares are 0 without recorded outcomes, so expected = 0 and the mean is p0 × (chosen + 2) / 2."""
    lost = CategoryFactory(slug="lost_parcel")
    template = OfferTemplateFactory(title="Lost")
    counters(template, lost, 0, a=1)

    [row] = get_ok(manager)

    assert (row["expected"], row["propensity_mean"]) == (0.0, sig4(1 / 3))


def test_no_counters_is_an_empty_list(db: None, manager: Any) -> None:
    assert get_ok(manager) == []


# --- Filters --------------------------------------------------------------------------------------


def test_the_category_filter_keeps_that_categorys_rows(model: Model, manager: Any) -> None:
    rows = get_ok(manager, {"category": "damaged_item"})

    assert [key(row) for row in rows] == [("damaged_item", model.t1.pk), ("damaged_item", model.t5.pk)]
    # The shares are the category's whatever the filter: the same figures as unfiltered.
    assert rows == [row for row in get_ok(manager) if row["category"] == "damaged_item"]


def test_the_policy_filter_keeps_that_policys_templates(model: Model, manager: Any) -> None:
    rows = get_ok(manager, {"policy": model.beta.pk})

    assert [key(row) for row in rows] == [("late_delivery", model.t4.pk), ("late_delivery", model.t2.pk)]
    assert rows == [row for row in get_ok(manager) if row["policy"]["id"] == model.beta.pk]


def test_both_filters_together(model: Model, manager: Any) -> None:
    rows = get_ok(manager, {"category": "damaged_item", "policy": model.alpha.pk})
    assert [key(row) for row in rows] == [("damaged_item", model.t1.pk), ("damaged_item", model.t5.pk)]

    assert get_ok(manager, {"category": "damaged_item", "policy": model.beta.pk}) == []


INVALID = [
    ({"category": "no_such_category"}, "category"),
    ({"category": "Late_Delivery"}, "category"),
    ({"policy": "999999"}, "policy"),
    ({"policy": "abc"}, "policy"),
    ({"policy": "1.5"}, "policy"),
    ({"policy": "-1"}, "policy"),
    ({"policy": "99999999999999999999999"}, "policy"),
]


@pytest.mark.parametrize(("params", "field"), INVALID)
def test_a_bad_filter_is_the_same_400_as_the_other_reports(
    model: Model, manager: Any, params: dict, field: str
) -> None:
    response = manager.get(URL, params)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {field}
    assert body[field]
    assert all(isinstance(message, str) and message for message in body[field])
    assert body == manager.get("/api/v1/reports/policies/", params).json()


def test_both_bad_filters_are_reported_together(model: Model, manager: Any) -> None:
    response = manager.get(URL, {"category": "nope", "policy": "x"})

    assert response.status_code == 400
    assert response.json() == {
        "category": ["no category has this slug"],
        "policy": ["no policy has this id"],
    }


def test_unknown_parameters_and_empty_values_are_ignored(model: Model, manager: Any) -> None:
    expected = get_ok(manager)

    for extra in ({"colour": "red"}, {"since": "nope"}, {"tier": "diamond"}, {"category": ""}, {"policy": ""}):
        assert get_ok(manager, extra) == expected, extra


# --- Who may read it, and what it costs --------------------------------------------------------------


def test_who_may_read_the_learning_report(model: Model, client_for: Any, api_client: Any) -> None:
    assert client_for("manager", "m").get(URL).status_code == 200
    assert client_for("analyst", "a").get(URL).status_code == 200
    assert client_for("agent", "g").get(URL).status_code == 403
    assert client_for("integration", "i").get(URL).status_code == 403
    assert api_client.get(URL).status_code == 401


def test_a_forbidden_caller_is_not_told_about_bad_filters(model: Model, client_for: Any) -> None:
    assert client_for("agent", "g").get(URL, {"category": "nope"}).status_code == 403


def test_the_report_is_a_plain_list_not_paginated(model: Model, manager: Any) -> None:
    rows = get_ok(manager, {"page_size": 1, "page": 2})

    assert isinstance(rows, list)
    assert len(rows) == 6


# The token's user with its groups, the category and policy lookups of the filters; then the report's two
# grouped queries (the offer counters, the categories' position shares). On PostgreSQL, report_session
# adds its settings statement and, inside the test's transaction, a savepoint and its release.
LEARNING_QUERIES = 5 + (3 if connection.vendor == "postgresql" else 0)


def test_the_query_count_does_not_grow_with_the_rows(model: Model, manager: Any) -> None:
    params = {"category": "late_delivery", "policy": model.alpha.pk}
    with CaptureQueriesContext(connection) as few:
        get_ok(manager, params)
    for n in range(30):
        template = OfferTemplateFactory(policy=model.alpha, title=f"More {n}")
        counters(template, model.late, n % 8, a=n + 1, chosen=n % 3)
        counters(template, model.late, (n + 1) % 8, b=2)
    with CaptureQueriesContext(connection) as many:
        rows = get_ok(manager, params)

    assert len(rows) == 32
    assert len(many) == len(few) == LEARNING_QUERIES, [q["sql"][:80] for q in many.captured_queries]


def test_the_selector_reads_the_setting_unless_told(model: Model) -> None:
    corrected = learning_rows(category=model.late, correction=True)
    with override_settings(RANKING_POSITION_CORRECTION="off"):
        assert learning_rows(category=model.late) == learning_rows(category=model.late, correction=False)
    assert learning_rows(category=model.late) == corrected
    assert [row.category_name for row in corrected] == ["Late delivery"] * 4


# --- End to end: offer sets and outcomes through the API ---------------------------------------------


def test_the_report_counts_what_the_api_showed_and_recorded(
    catalog: Catalog, agent1: Any, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Offer sets made and answered through the API, recorded by the worker (run eagerly at commit).
    Late deliveries and damaged items both show Alpha's 10.00 credit and Beta's free shipping, at a and b
    in whichever order the ranking (exploring) put them; the tally below is of the labels the API showed.
    Declined sets count in shown and choose nothing."""
    c = catalog
    plan = [
        (c.late, c.alpha),
        (c.late, c.beta),
        (c.late, "declined"),
        (c.late, c.alpha),
        (c.late, c.alpha),
        (c.late, "declined"),
        (c.damaged, c.beta),
        (c.damaged, "declined"),
        (c.damaged, "declined"),
    ]
    shown_at: Counter[tuple[str, int, str]] = Counter()  # (category, policy id, label)
    chosen: Counter[tuple[str, int]] = Counter()
    outcomes: Counter[str] = Counter()
    chose_at: Counter[tuple[str, str]] = Counter()  # (category, label)
    for n, (category, choose) in enumerate(plan):
        offer_set = offer_set_post(agent1, f"C-{n}", category)
        assert {o["policy"]["id"] for o in offer_set["options"]} == {c.alpha.pk, c.beta.pk}
        for policy in (c.alpha, c.beta):
            shown_at[category.slug, policy.pk, label_of(offer_set, policy)] += 1
        choice = choose if isinstance(choose, str) else label_of(offer_set, choose)
        with django_capture_on_commit_callbacks(execute=True):
            outcome_post(agent1, offer_set, choice, None)
        outcomes[category.slug] += 1
        if not isinstance(choose, str):
            chosen[category.slug, choose.pk] += 1
            chose_at[category.slug, choice] += 1

    rows = get_ok(manager)

    template = {p.pk: p.offers.get().pk for p in (c.alpha, c.beta)}
    assert {(row["category"], row["policy"]["id"]) for row in rows} == {
        (slug, policy.pk) for slug in ("late_delivery", "damaged_item") for policy in (c.alpha, c.beta)
    }
    for row in rows:
        slug, policy_id = row["category"], row["policy"]["id"]
        assert row["offer"]["id"] == template[policy_id]
        assert row["shown_at"] == {label: shown_at[slug, policy_id, label] for label in "abc"}, row
        assert row["chosen"] == chosen[slug, policy_id]
        shares = {label: chose_at[slug, label] / outcomes[slug] for label in "abc"}
        expected = sum(row["shown_at"][label] * shares[label] for label in "abc")
        assert row["expected"] == pytest.approx(expected, abs=5e-5)
        # 4 significant digits of a mean between 0.08 and 1: within half a unit of the 4th digit.
        assert row["propensity_mean"] == pytest.approx(1 / 3 * (row["chosen"] + 2) / (expected + 2), abs=6e-5)
    # Every set, declined or not, counted both its options; only the choices count in chosen.
    for slug in ("late_delivery", "damaged_item"):
        mine = [row for row in rows if row["category"] == slug]
        assert sum(row["shown"] for row in mine) == 2 * outcomes[slug]
        assert sum(row["chosen"] for row in mine) == sum(n for (s, _), n in chosen.items() if s == slug)
    assert [row["chosen"] for row in rows if row["category"] == "damaged_item"] in ([1, 0], [0, 1])
