"""The operations dashboard: its selectors against hand-computed figures, the SVG charts (with data,
empty, hostile labels), and the admin page: who may see it, what it shows, what it costs in queries."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from compensation.models import (
    AcceptanceStat,
    Customer,
    Escalation,
    Incident,
    Offer,
    OfferSet,
    Outcome,
    OutcomeOption,
    OutcomeSubmission,
    PolicyMonthSpend,
    PositionStat,
    Remedy,
)
from compensation.periods import month_start
from policies.choices import OfferKind, Tier
from policies.models import OfferTemplate, Policy
from reporting import charts
from reporting.dashboard import (
    dashboard_charts,
    dashboard_days,
    dashboard_escalations,
    dashboard_get,
    dashboard_learning,
    dashboard_policy_acceptance,
    dashboard_remedy_cost,
    dashboard_window,
)
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

pytestmark = pytest.mark.django_db

URL = "/admin/dashboard/"
NOW = datetime(2025, 3, 20, 15, 0, tzinfo=UTC)  # the window is Feb 19 to Mar 20 in UTC


# --- Helpers ---------------------------------------------------------------------------------


def at(day: date | str, hour: int = 12, minute: int = 0) -> datetime:
    """That time of that day in the current time zone."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.get_current_timezone())


def offer_set_with_outcome(
    agent: Any,
    *,
    created_at: datetime,
    policies: Sequence[Policy],
    chosen: int | None = None,
    recorded_at: datetime | None = None,
    cost: str = "0.00",
    satisfaction: int | None = None,
) -> OfferSet:
    """An offer set made at ``created_at`` with one option per policy; with ``recorded_at``, an outcome
    choosing option ``chosen`` (an index into ``policies``), or declining them all when it is None."""
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    customer, _ = Customer.objects.get_or_create(external_id="C-1", defaults={"name": "Ada Lovelace"})
    incident = Incident.objects.create(
        customer=customer, category=category, severity=3, currency="USD", occurred_at=created_at
    )
    offer_set = OfferSet.objects.create(
        created_by=agent,
        customer=customer,
        incident=incident,
        policy_revision=1,
        created_at=created_at,
        expires_at=created_at + timedelta(hours=1),
    )
    offers = [
        Offer.objects.create(
            offer_set=offer_set,
            label="abc"[i],
            rank=i + 1,
            kind=OfferKind.FIXED_CREDIT,
            title="A credit",
            estimated_cost=Decimal(cost),
            currency="USD",
            policy=policy,
            policy_name=policy.name,
            policy_version=policy.version,
            score=1.0,
        )
        for i, policy in enumerate(policies)
    ]
    if recorded_at is not None:
        offer = offers[chosen] if chosen is not None else None
        submission = OutcomeSubmission.objects.create(
            offer_set=offer_set,
            offer=offer,
            choice=offer.label if offer else "declined",
            submitted_by=agent,
            submitted_at=recorded_at,
            status=OutcomeSubmission.Status.RECORDED,
            recorded_at=recorded_at,
        )
        outcome = Outcome.objects.create(
            submission=submission,
            offer_set=offer_set,
            offer=offer,
            choice=submission.choice,
            accepted=offer is not None,
            kind=offer.kind if offer else "",
            policy=offer.policy if offer else None,
            category=category,
            tier=Tier.STANDARD,
            customer=customer,
            agent=agent,
            cost=Decimal(cost),
            currency="USD",
            satisfaction=satisfaction,
            offer_set_created_at=created_at,
            submitted_at=recorded_at,
            recorded_at=recorded_at,
            follow_up_due_at=recorded_at + timedelta(hours=24),
        )
        OutcomeOption.objects.bulk_create(  # as the recorder writes them: every option the set showed
            OutcomeOption(
                outcome=outcome,
                offer=shown,
                policy=shown.policy,
                kind=shown.kind,
                category=category,
                tier=outcome.tier,
                agent=agent,
                chosen=shown == offer,
                recorded_at=recorded_at,
            )
            for shown in offers
        )
    return offer_set


def remedy_for(
    offer_set: OfferSet,
    *,
    cost: str,
    given_at: datetime | None,
    status: str = Remedy.Status.GIVEN,
    kind: str = OfferKind.REFUND,
) -> Remedy:
    """A remedy item of the set's incident (one per kind), as the recorder leaves it once given or waiting."""
    policy = Offer.objects.filter(offer_set=offer_set).first().policy
    return Remedy.objects.create(
        incident=offer_set.incident,
        customer=offer_set.customer,
        offer_set=offer_set,
        kind=kind,
        title="Put right",
        estimated_cost=Decimal(cost),
        currency="USD",
        policy=policy,
        policy_name=policy.name,
        policy_version=policy.version,
        created_at=offer_set.created_at,
        status=status,
        given_at=given_at,
        category=offer_set.incident.category,
        tier=Tier.STANDARD,
        agent=offer_set.created_by,
    )


def escalation_due(*, due_at: datetime, status: str = Escalation.Status.OPEN, reason: str = "Severity 5") -> Escalation:
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    customer, _ = Customer.objects.get_or_create(external_id="C-1", defaults={"name": "Ada Lovelace"})
    incident = Incident.objects.create(
        customer=customer, category=category, severity=5, currency="USD", occurred_at=due_at
    )
    return Escalation.objects.create(
        kind=Escalation.Kind.SENIOR_MANAGER,
        status=status,
        reason=reason,
        due_at=due_at,
        incident=incident,
        customer=customer,
    )


def learned_counters(
    category_slug: str, *, title: str = "A credit", shard: int = 0, a: int = 0, chosen: int = 0, policy: Any = None
) -> OfferTemplate:
    """A new offer template shown ``a`` times at a and chosen ``chosen`` times in the category, and the
    category's position counters: as many outcomes as showings, half of them choosing a (share a = 0.5)."""
    category = CategoryFactory(slug=category_slug)
    template = OfferTemplateFactory(title=title, **({"policy": policy} if policy else {}))
    AcceptanceStat.objects.create(
        offer_template=template, category=category, shard=shard, offered=a, shown_a=a, chosen=chosen
    )
    counters, _ = PositionStat.objects.get_or_create(category=category, shard=shard)
    PositionStat.objects.filter(pk=counters.pk).update(outcomes=F("outcomes") + 2 * a, chosen_a=F("chosen_a") + a)
    return template


@pytest.fixture(autouse=True)
def _utc(settings: Any) -> None:
    """The hand-computed figures below are for days in UTC, whatever TIME_ZONE the suite runs with."""
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def agent(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("agent-1")


def month_new(agent: Any, today: date) -> dict[str, Policy]:
    """Six offer sets around the window that ends ``today``; with today = Mar 20 (NOW), the window is
    Feb 19 to Mar 20:

    ====  ============  =======  ============  ================  =====  ============
    set   made          options  recorded      choice            cost   satisfaction
    ====  ============  =======  ============  ================  =====  ============
    1     Mar 18 09:00  P, Q     Mar 18 09:05  P                 10.00  4
    2     Mar 18 11:00  P, Q     Mar 18 11:10  Q                 2.50   2
    3     Mar 20 08:00  P, R     Mar 20 08:30  declined          0      1
    4     Mar 20 09:00  Q        (none)
    5     Feb 18 22:00  Q        Feb 18 23:30  Q (outside)       99.00  5
    6     Feb 18 23:50  Q        Feb 19 00:10  Q (made outside)  5.00   none
    ====  ============  =======  ============  ================  =====  ============

    P: offered 3 (sets 1-3), chosen 1. Q: offered 3 (1, 2, 6), chosen 2. R: offered 1, chosen 0.
    """
    p = PolicyFactory(name="Late credit")
    q = PolicyFactory(name="Apology perk")
    r = PolicyFactory(name="Goodwill refund")
    two_ago, before, first = today - timedelta(days=2), today - timedelta(days=30), today - timedelta(days=29)
    make = offer_set_with_outcome
    make(agent, created_at=at(two_ago, 9), policies=[p, q], chosen=0, recorded_at=at(two_ago, 9, 5), cost="10.00",
         satisfaction=4)  # fmt: skip
    make(agent, created_at=at(two_ago, 11), policies=[p, q], chosen=1, recorded_at=at(two_ago, 11, 10), cost="2.50",
         satisfaction=2)  # fmt: skip
    make(agent, created_at=at(today, 8), policies=[p, r], recorded_at=at(today, 8, 30), satisfaction=1)
    make(agent, created_at=at(today, 9), policies=[q])
    make(agent, created_at=at(before, 22), policies=[q], chosen=0, recorded_at=at(before, 23, 30), cost="99.00",
         satisfaction=5)  # fmt: skip
    make(agent, created_at=at(before, 23, 50), policies=[q], chosen=0, recorded_at=at(first, 0, 10), cost="5.00")
    return {"P": p, "Q": q, "R": r}


@pytest.fixture
def month(agent: Any) -> dict[str, Policy]:
    return month_new(agent, NOW.date())


def bars(svg: str) -> list[str]:
    """The data-value of every bar drawn, in order."""
    return re.findall(r'<rect class="bar[^"]*"[^>]*data-value="([^"]+)"', svg)


def chart(html: str, chart_id: str) -> str:
    match = re.search(rf'<svg class="chart" id="{chart_id}".*?</svg>', html, re.S)
    assert match, f"no {chart_id} in the page"
    return match.group(0)


# --- Selectors ---------------------------------------------------------------------------------


def test_window_is_the_last_30_days_in_the_time_zone_today_included(settings: Any) -> None:
    settings.TIME_ZONE = "America/New_York"

    window = dashboard_window(now=datetime(2025, 3, 20, 2, 0, tzinfo=UTC))  # still Mar 19 in New York

    assert (window.first_day, window.last_day) == (date(2025, 2, 18), date(2025, 3, 19))
    assert len(window.days) == 30
    assert window.start == datetime(2025, 2, 18, 5, 0, tzinfo=UTC)  # EST
    assert window.end == datetime(2025, 3, 20, 4, 0, tzinfo=UTC)  # EDT: the window spans the DST change


def test_days_count_offer_sets_and_outcomes_on_the_day_they_happened(month: dict[str, Policy]) -> None:
    days = {d.day: d for d in dashboard_days(window=dashboard_window(now=NOW))}

    assert len(days) == 30
    assert min(days) == date(2025, 2, 19)
    assert max(days) == date(2025, 3, 20)
    figures = {
        day: (d.offer_sets, d.offers, d.outcomes, d.accepted, d.cost, d.satisfaction, d.ratings)
        for day, d in days.items()
        if d.offer_sets or d.outcomes
    }
    assert figures == {
        # Set 6 was made on Feb 18 (outside) but recorded on Feb 19.
        date(2025, 2, 19): (0, 0, 1, 1, Decimal("5.00"), None, 0),
        date(2025, 3, 18): (2, 4, 2, 2, Decimal("12.50"), 3.0, 2),
        date(2025, 3, 20): (2, 3, 1, 0, Decimal("0.00"), 1.0, 1),
    }
    assert days[date(2025, 3, 19)].cost == Decimal("0.00")
    assert days[date(2025, 3, 19)].satisfaction is None


@pytest.mark.parametrize(("zone", "day", "made"), [("UTC", date(2025, 3, 19), 2), ("Asia/Tokyo", date(2025, 3, 20), 1)])
def test_days_are_calendar_days_in_the_time_zone(agent: Any, settings: Any, zone: str, day: date, made: int) -> None:
    settings.TIME_ZONE = zone  # NOW is Mar 21 00:00 in Tokyo: its window is Feb 20 to Mar 21
    policy = PolicyFactory()
    offer_set_with_outcome(  # Mar 20 08:00 and 08:30 in Tokyo
        agent,
        created_at=datetime(2025, 3, 19, 23, 0, tzinfo=UTC),
        policies=[policy],
        chosen=0,
        recorded_at=datetime(2025, 3, 19, 23, 30, tzinfo=UTC),
        cost="7.00",
    )
    offer_set_with_outcome(  # Feb 19 19:00 in Tokyo
        agent, created_at=datetime(2025, 2, 19, 10, 0, tzinfo=UTC), policies=[policy]
    )

    days = {d.day: d for d in dashboard_days(window=dashboard_window(now=NOW))}

    assert (days[day].offer_sets, days[day].accepted, days[day].cost) == (1, 1, Decimal("7.00"))
    assert sum(d.offer_sets for d in days.values()) == made


def test_acceptance_per_policy_counts_options_offered_and_chosen(month: dict[str, Policy]) -> None:
    rows = dashboard_policy_acceptance(window=dashboard_window(now=NOW))

    assert [(r.name, r.offered, r.chosen) for r in rows] == [
        ("Late credit", 3, 1),  # sets 1, 2, 3
        ("Apology perk", 3, 2),  # sets 1, 2, 6; set 4 has no outcome, set 5 is outside
        ("Goodwill refund", 1, 0),
    ]
    assert rows[0].rate == pytest.approx(1 / 3)
    assert rows[2].rate == 0.0


def test_acceptance_per_policy_keeps_the_most_offered(month: dict[str, Policy]) -> None:
    rows = dashboard_policy_acceptance(window=dashboard_window(now=NOW), limit=2)

    assert [r.name for r in rows] == ["Late credit", "Apology perk"]  # ties by policy id


def test_escalations_count_open_and_overdue_and_list_the_most_overdue_first(db: None) -> None:
    escalation_due(due_at=NOW + timedelta(hours=2))  # open, not due yet
    late = escalation_due(due_at=NOW - timedelta(hours=1), status=Escalation.Status.ACKNOWLEDGED)
    later = escalation_due(due_at=NOW - timedelta(hours=3), reason="Called twice")
    escalation_due(due_at=NOW - timedelta(days=2), status=Escalation.Status.RESOLVED)  # closed: not counted

    figures = dashboard_escalations(now=NOW)

    assert (figures.open, figures.acknowledged, figures.overdue) == (3, 1, 2)
    assert [(e.id, e.overdue_by, e.status, e.customer) for e in figures.most_overdue] == [
        (later.pk, timedelta(hours=3), "Open", "Ada Lovelace"),
        (late.pk, timedelta(hours=1), "Acknowledged", "Ada Lovelace"),
    ]
    assert figures.most_overdue[0].reason == "Called twice"


def test_dashboard_totals_add_up_the_days(month: dict[str, Policy]) -> None:
    dashboard = dashboard_get(now=NOW)

    assert (dashboard.offer_sets, dashboard.offers, dashboard.outcomes, dashboard.accepted) == (4, 7, 4, 3)
    assert dashboard.acceptance_rate == pytest.approx(3 / 4)
    assert dashboard.cost == Decimal("17.50")
    assert dashboard.satisfaction == pytest.approx((4 + 2 + 1) / 3)  # each rating once, not the days' averages
    assert dashboard.currency == "USD"


def test_remedy_cost_counts_the_remedies_given_in_the_window_by_given_at(month: dict[str, Policy], agent: Any) -> None:
    first, today = date(2025, 2, 19), NOW.date()
    made = offer_set_with_outcome(agent, created_at=at(first, 9), policies=[month["P"]])
    remedy_for(made, cost="40.00", given_at=at(first, 0, 0))  # the window's first instant
    remedy_for(made, cost="7.25", given_at=at(today, 14, 59), kind=OfferKind.GIFT)
    before = at(first, 0, 0) - timedelta(microseconds=1)  # the last instant of the day before
    remedy_for(made, cost="100.00", given_at=before, kind=OfferKind.FIXED_CREDIT)
    remedy_for(made, cost="55.00", given_at=None, status=Remedy.Status.AWAITING_APPROVAL, kind=OfferKind.FREE_SHIPPING)
    remedy_for(made, cost="66.00", given_at=None, status=Remedy.Status.REJECTED, kind=OfferKind.EXPEDITED_REPLACEMENT)

    dashboard = dashboard_get(now=NOW)

    assert dashboard.remedy_cost == Decimal("47.25")
    assert dashboard.cost == Decimal("17.50")  # the chosen options' alone, as before
    assert dashboard_remedy_cost(window=dashboard_window(now=NOW, days=1)) == Decimal("7.25")


def test_an_empty_dashboard_has_no_rates_and_no_averages(db: None) -> None:
    dashboard = dashboard_get(now=NOW)

    assert len(dashboard.days) == 30
    assert dashboard.acceptance_rate is None
    assert dashboard.satisfaction is None
    assert dashboard.cost == Decimal("0.00")
    assert dashboard.remedy_cost == Decimal("0.00")
    assert dashboard.policies == []
    assert (dashboard.escalations.open, dashboard.escalations.overdue, dashboard.escalations.most_overdue) == (0, 0, [])


@pytest.fixture
def learned(db: None) -> dict[str, OfferTemplate]:
    """late_delivery: seven offers of Alpha shown 10 times at a (share a = 0.5: 5 choices expected each),
    k0 to k6 chosen k times, so propensity_mean = p0 × (k + 2) / (5 + 2) = (k + 2) / 21. damaged_item: one
    offer shown 4 times at a, chosen once: 1/3 × 3 / (2 + 2) = 0.25."""
    CategoryFactory(slug="late_delivery", name="Late delivery")
    alpha = PolicyFactory(name="Alpha credit")
    made = {f"k{k}": learned_counters("late_delivery", title=f"Credit {k}", shard=k, a=10, chosen=k, policy=alpha)
            for k in range(7)}  # fmt: skip
    made["damaged"] = learned_counters("damaged_item", title="Damaged credit", a=4, chosen=1, policy=alpha)
    return made


def test_learning_keeps_each_categorys_top_offers_by_propensity_mean(learned: dict[str, OfferTemplate]) -> None:
    categories = dashboard_learning()

    assert [(c.slug, c.name, c.offers) for c in categories] == [
        ("damaged_item", "damaged item", 1),
        ("late_delivery", "Late delivery", 7),
    ]
    late = categories[1]
    assert [row.offer_id for row in late.top] == [learned[f"k{k}"].pk for k in (6, 5, 4, 3, 2)]
    assert [row.propensity_mean for row in late.top] == [0.381, 0.3333, 0.2857, 0.2381, 0.1905]  # 8/21 .. 4/21
    assert [row.propensity_mean for row in categories[0].top] == [0.25]
    assert [len(c.top) for c in dashboard_learning(limit=2)] == [1, 2]


def test_learning_is_empty_without_counters(db: None) -> None:
    assert dashboard_learning() == []
    assert dashboard_get(now=NOW).learning == []


# --- Charts ------------------------------------------------------------------------------------


def test_charts_draw_a_bar_per_nonzero_value_and_a_point_per_rated_day(month: dict[str, Policy]) -> None:
    drawn = dashboard_charts(dashboard_get(now=NOW))

    # Made: Mar 18 (2), Mar 20 (2); accepted: Feb 19 (1), Mar 18 (2).
    assert bars(drawn.offers) == ["2", "2", "1", "2"]
    assert bars(drawn.cost) == ["5.0", "12.5"]
    assert re.findall(r'class="point[^"]*"[^>]*data-value="([^"]+)"', drawn.satisfaction) == ["3.0", "1.0"]
    assert drawn.satisfaction.count('class="line') == 0  # Mar 18 and Mar 20 are not adjacent: no segment
    assert re.findall(r'text-anchor="end"[^>]*>([\d.]+)<', drawn.satisfaction) == ["0", "1", "2", "3", "4", "5"]
    assert bars(drawn.acceptance) == [str(1 / 3), str(2 / 3), "0.0"]
    assert "33% (1 of 3)" in drawn.acceptance
    for svg in (drawn.offers, drawn.cost, drawn.acceptance, drawn.satisfaction):
        assert 'role="img"' in svg
        assert "<title id=" in svg
        assert "empty-state" not in svg


def test_a_line_joins_adjacent_days_and_breaks_at_gaps() -> None:
    svg = charts.line_chart(
        chart_id="c",
        title="t",
        summary="s",
        labels=["1", "2", "3", "4", "5"],
        series=charts.Series("rating", [4.0, 5.0, None, 3.0, 2.5]),
        x_label="day",
        y_label="rating",
        y_max=5,
    )

    assert svg.count('class="point') == 4
    assert svg.count('class="line') == 2


@pytest.mark.parametrize(
    "draw",
    [
        lambda: charts.bar_chart(
            chart_id="c", title="t", summary="s", labels=["a", "b"], series=[charts.Series("n", [0, 0])],
            x_label="x", y_label="y", empty_message="Nothing here.",
        ),
        lambda: charts.bar_chart(
            chart_id="c", title="t", summary="s", labels=[], series=[], x_label="x", y_label="y",
            empty_message="Nothing here.",
        ),
        lambda: charts.line_chart(
            chart_id="c", title="t", summary="s", labels=["a", "b"], series=charts.Series("n", [None, None]),
            x_label="x", y_label="y", empty_message="Nothing here.",
        ),
        lambda: charts.line_chart(
            chart_id="c", title="t", summary="s", labels=["a"], series=charts.Series("n", [0.0]),
            x_label="x", y_label="y", empty_message="Nothing here.",
        ),
        lambda: charts.hbar_chart(chart_id="c", title="t", summary="s", rows=[], x_label="x",
                                  empty_message="Nothing here."),
    ],
)  # fmt: skip
def test_charts_without_data_say_so_instead_of_drawing(draw: Any) -> None:
    svg = draw()

    assert "Nothing here." in svg
    assert 'class="bar' not in svg
    assert 'class="point' not in svg
    assert not re.search(r"\b(nan|inf)\b", svg, re.IGNORECASE)  # no coordinate from a division by zero


def test_an_all_zero_line_with_a_fixed_scale_draws_its_points() -> None:
    svg = charts.line_chart(
        chart_id="c", title="t", summary="s", labels=["a", "b"], series=charts.Series("n", [0.0, 0.0]),
        x_label="x", y_label="y", y_max=5,
    )  # fmt: skip

    assert svg.count('class="point') == 2


def test_chart_labels_are_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    svg = charts.hbar_chart(
        chart_id="c", title=hostile, summary=hostile, rows=[charts.HBar(hostile, 0.5, hostile)], x_label=hostile
    )
    svg += charts.bar_chart(
        chart_id="d", title="t", summary="s", labels=[hostile], series=[charts.Series(hostile, [1])],
        x_label=hostile, y_label=hostile,
    )  # fmt: skip

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


@pytest.mark.parametrize(("maximum", "top"), [(1, 1), (3, 3), (7, 8), (12, 15), (45, 50), (101, 125)])
def test_count_scales_end_on_a_round_number(maximum: int, top: int) -> None:
    svg = charts.bar_chart(
        chart_id="c", title="t", summary="s", labels=["a"], series=[charts.Series("n", [maximum])],
        x_label="x", y_label="y",
    )  # fmt: skip

    ticks = [
        int(t.replace(",", "")) for t in re.findall(r'<text class="tick"[^>]*text-anchor="end"[^>]*>([\d,]+)<', svg)
    ]
    assert max(ticks) == top


def marks(svg: str) -> list[str]:
    """The data-value of every mark drawn, in order."""
    return re.findall(r'<circle class="mark"[^>]*data-value="([^"]+)"', svg)


def test_the_learning_charts_draw_each_top_offers_interval_and_mean(learned: dict[str, OfferTemplate]) -> None:
    drawn = dashboard_charts(dashboard_get(now=NOW)).learning

    assert [(c.name, c.chart_id) for c in drawn] == [
        ("damaged item", "chart-learning-damaged_item"),
        ("Late delivery", "chart-learning-late_delivery"),
    ]
    late = drawn[1].svg
    assert marks(late) == ["0.381", "0.3333", "0.2857", "0.2381", "0.1905"]
    ranges = re.findall(r'<rect class="range[^"]*"[^>]*data-low="([^"]+)" data-high="([^"]+)"', late)
    assert len(ranges) == 5
    for (low, high), mean in zip(ranges, marks(late), strict=True):
        assert float(low) < float(mean) < float(high)
    # Each range starts left of its mark and ends right of it, on the same scale.
    xs = re.findall(r'<rect class="range[^"]*" x="([\d.]+)"[^>]*width="([\d.]+)"', late)
    cxs = re.findall(r'<circle class="mark" cx="([\d.]+)"', late)
    for (x, width), cx in zip(xs, cxs, strict=True):
        assert float(x) < float(cx) < float(x) + float(width)
    assert "Alpha credit · Credit 6" in late  # the summary names policy · offer title
    # Each row is labelled policy · kind in words (a title is a template, unreadable cut short); its tooltip
    # starts with the title.
    assert re.findall(r'<text class="row-label"[^>]*>([^<]+)<title>', late) == ["Alpha credit · fixed credit"] * 5
    assert "38.1% (" in late
    assert 'role="img"' in late
    assert "<title id=" in late
    assert "Late delivery: the 5 offers with the highest estimated acceptance of the 7 shown so far" in late
    assert "chosen 6 of 10 times shown, where about 5.0 choices were expected" in late
    assert marks(drawn[0].svg) == ["0.25"]


def test_without_learned_data_one_learning_chart_says_so(db: None) -> None:
    drawn = dashboard_charts(dashboard_get(now=NOW)).learning

    assert [c.chart_id for c in drawn] == ["chart-learning"]
    assert "Nothing learned yet: no outcomes recorded." in drawn[0].svg
    assert 'class="range' not in drawn[0].svg
    assert 'class="mark' not in drawn[0].svg


def test_range_chart_labels_are_escaped_and_long_ones_shortened() -> None:
    hostile = '<script>alert("x")</script> and a label long enough to be cut short'
    svg = charts.range_chart(
        chart_id="c", title=hostile, summary=hostile, x_label=hostile,
        rows=[charts.RangeRow(hostile, 0.1, 0.4, 0.2, hostile, hostile)],
    )  # fmt: skip

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "…<title>" in svg  # the shortened label, its whole text in the tooltip
    assert not re.search(r"\b(nan|inf)\b", svg, re.IGNORECASE)


def test_a_range_too_narrow_to_see_still_draws_a_sliver() -> None:
    svg = charts.range_chart(
        chart_id="c", title="t", summary="s", x_label="x", rows=[charts.RangeRow("sure", 0.5, 0.5, 0.5, "50%", "")]
    )

    assert float(re.search(r'<rect class="range[^"]*"[^>]*width="([\d.]+)"', svg).group(1)) >= 1.0


# --- The admin page ----------------------------------------------------------------------------


def test_the_admin_index_links_to_the_dashboard(admin_client: Any) -> None:
    response = admin_client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert f'href="{URL}"' in response.content.decode()
    assert reverse("admin:dashboard") == URL


def test_staff_see_the_charts_and_the_escalations(admin_client: Any, agent: Any) -> None:
    policies = month_new(agent, timezone.localdate())  # the page's window ends today
    overdue = escalation_due(due_at=timezone.now() - timedelta(hours=1), reason="Parcel lost <twice>")
    made = offer_set_with_outcome(agent, created_at=timezone.now(), policies=[policies["P"]])
    remedy_for(made, cost="12.25", given_at=timezone.now())

    response = admin_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    for chart_id in ("chart-offers", "chart-cost", "chart-acceptance", "chart-satisfaction"):
        assert "<title id=" in chart(html, chart_id)
    assert "Nothing learned yet" in chart(html, "chart-learning")  # made directly: no learning counters
    assert len(bars(chart(html, "chart-acceptance"))) == 3
    assert 'id="escalation-open"><span class="number">1<' in html
    assert 'id="escalation-overdue"><span class="number">1<' in html
    assert 'id="figure-cost"><span class="number">17.50<' in html
    assert 'id="figure-remedy-cost"><span class="number">12.25<' in html
    assert f'href="{reverse("admin:compensation_escalation_change", args=[overdue.pk])}"' in html
    assert "Parcel lost &lt;twice&gt;" in html


def test_an_empty_dashboard_renders_its_empty_states(admin_client: Any) -> None:
    response = admin_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "No offers made or accepted in the last 30 days." in html
    assert "Nothing was spent in the last 30 days." in html
    assert "No outcomes recorded in the last 30 days." in html
    assert "No satisfaction ratings in the last 30 days." in html
    assert "No escalation is overdue." in html
    assert 'class="bar' not in html
    assert "Nothing learned yet: no outcomes recorded." in html
    assert 'id="figure-remedy-cost"><span class="number">0.00<' in html


def test_the_page_shows_each_categorys_learning_chart(admin_client: Any, learned: dict[str, OfferTemplate]) -> None:
    response = admin_client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h3>Late delivery</h3>" in html
    assert marks(chart(html, "chart-learning-late_delivery")) == ["0.381", "0.3333", "0.2857", "0.2381", "0.1905"]
    assert marks(chart(html, "chart-learning-damaged_item")) == ["0.25"]
    assert 'id="chart-learning"' not in html


@pytest.mark.parametrize("who", ["anonymous", "not staff"])
def test_others_are_sent_to_the_admin_login(client: Any, django_user_model: Any, who: str) -> None:
    if who == "not staff":
        client.force_login(django_user_model.objects.create_user("agent-2", password="x"))

    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={URL}"


def test_staff_without_permission_to_view_outcomes_are_refused(client: Any, django_user_model: Any) -> None:
    user = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(user)

    assert client.get(URL).status_code == 403
    assert URL not in client.get(reverse("admin:index")).content.decode()

    user.user_permissions.add(Permission.objects.get(codename="view_outcome"))
    user = django_user_model.objects.get(pk=user.pk)  # fresh permission cache
    client.force_login(user)
    assert client.get(URL).status_code == 200


def test_the_page_costs_the_same_queries_whatever_the_volume(
    admin_client: Any, agent: Any, django_assert_max_num_queries: Any
) -> None:
    """The session, the user and nine for the figures: no query per offer set, day, policy, escalation,
    learned offer, category or capped policy."""
    now = datetime.now(UTC)
    policies = PolicyFactory.create_batch(3)
    admin_client.get(URL)  # warm up: content types, the admin's first-request caches
    with CaptureQueriesContext(connection) as small:
        admin_client.get(URL)
    for i in range(12):
        offer_set_with_outcome(
            agent,
            created_at=now - timedelta(days=i % 5, minutes=10),
            policies=policies,
            chosen=i % 3,
            recorded_at=now - timedelta(days=i % 5, minutes=5),
            cost="4.00",
            satisfaction=1 + i % 5,
        )
        escalation_due(due_at=now - timedelta(hours=i + 1))
        learned_counters(f"category_{i % 4}", shard=i % 8, a=5 + i, chosen=i % 4)
        capped = PolicyFactory(monthly_cap=Decimal("50.00"))
        PolicyMonthSpend.objects.create(policy=capped, month=month_start(now), spent=Decimal(4 * i))

    with django_assert_max_num_queries(len(small)):
        response = admin_client.get(URL)

    assert response.status_code == 200
    assert "chart-learning-category_3" in response.content.decode()
    assert len(bars(chart(response.content.decode(), "chart-budgets"))) == 12
    assert len(small) == 11, [q["sql"][:80] for q in small.captured_queries]  # session, user, the nine figures
