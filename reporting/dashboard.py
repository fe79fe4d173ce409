"""The operations dashboard: the last 30 days of offers, cost (and, apart, the
remedies' cost), acceptance and satisfaction, the escalations open now, each
capped policy's spend this month against its cap, and what the ranking has
learned so far (the learning report's top offers per category, with their 90%
credible intervals).

Every figure is aggregated by the database (a handful of grouped queries,
whatever the volume); Python only fills the days that had nothing. Days are
calendar days in the current time zone (``TIME_ZONE``), today included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from itertools import groupby

from django.conf import settings
from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.safestring import SafeString

from compensation.models import Escalation, OfferSet, Outcome, OutcomeOption, Remedy
from compensation.periods import day_start, local_date, month_start
from compensation.selectors import BUDGET_ALERT_SHARE, MonthBudget, policy_month_spent
from policies.choices import OFFER_KIND_WORDS
from policies.models import Policy
from reporting import charts
from reporting.learning import LearningRow, learning_rows

WINDOW_DAYS = 30
TOP_POLICIES = 15
MOST_OVERDUE = 10
TOP_LEARNED = 5  # offers per category in the learning chart
TOP_BUDGETS = 15  # capped policies in the budget chart, nearest their cap first
BUDGET_VALUE_WIDTH = 250  # "12,345.00 / 20,000.00 (85%, past 80%)" at 12px, bold
SATISFACTION_MAX = 5
NOT_CLOSED = (Escalation.Status.OPEN, Escalation.Status.ACKNOWLEDGED)


@dataclass(frozen=True)
class Window:
    """``first_day`` to ``last_day`` inclusive, and the instants that bound them: ``start`` <= t < ``end``."""

    first_day: date
    last_day: date
    start: datetime
    end: datetime
    tz: tzinfo

    @property
    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range((self.last_day - self.first_day).days + 1)]


@dataclass(frozen=True)
class DayFigures:
    day: date
    offer_sets: int = 0
    offers: int = 0
    outcomes: int = 0
    accepted: int = 0
    cost: Decimal = Decimal("0.00")
    satisfaction: float | None = None  # the day's average; None when nobody rated
    ratings: int = 0


@dataclass(frozen=True)
class PolicyAcceptance:
    policy_id: int
    name: str
    offered: int
    chosen: int

    @property
    def rate(self) -> float:
        return self.chosen / self.offered if self.offered else 0.0


@dataclass(frozen=True)
class OverdueEscalation:
    id: int
    kind: str
    status: str
    due_at: datetime
    customer: str
    reason: str
    overdue_by: timedelta


@dataclass(frozen=True)
class EscalationFigures:
    open: int  # not closed: open or acknowledged
    acknowledged: int
    overdue: int
    most_overdue: list[OverdueEscalation]


@dataclass(frozen=True)
class CategoryLearning:
    """One category's learned offers: how many have data, and the top ones by ``propensity_mean``."""

    slug: str
    name: str
    offers: int
    top: list[LearningRow]


@dataclass(frozen=True)
class PolicyBudget:
    """An active capped policy's spend this month against its cap."""

    policy_id: int
    name: str
    budget: MonthBudget


@dataclass(frozen=True)
class Budgets:
    """This month's spend of every active policy with a monthly cap, nearest its cap first."""

    month: date
    policies: list[PolicyBudget]

    @property
    def near_cap(self) -> list[PolicyBudget]:
        """Those that have spent 80% of their cap or more."""
        return [p for p in self.policies if p.budget.near_cap]


@dataclass(frozen=True)
class Dashboard:
    window: Window
    currency: str
    days: list[DayFigures]
    policies: list[PolicyAcceptance]
    escalations: EscalationFigures
    remedy_cost: Decimal  # what the remedies given in the window cost; not part of ``cost``
    learning: list[CategoryLearning]  # all outcomes recorded so far, not only the window's
    budgets: Budgets  # this calendar month, not the window

    @property
    def offer_sets(self) -> int:
        return sum(d.offer_sets for d in self.days)

    @property
    def offers(self) -> int:
        return sum(d.offers for d in self.days)

    @property
    def outcomes(self) -> int:
        return sum(d.outcomes for d in self.days)

    @property
    def accepted(self) -> int:
        return sum(d.accepted for d in self.days)

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted outcomes over recorded outcomes; None when none were recorded."""
        return self.accepted / self.outcomes if self.outcomes else None

    @property
    def cost(self) -> Decimal:
        return sum((d.cost for d in self.days), Decimal("0.00"))

    @property
    def satisfaction(self) -> float | None:
        """The average rating over the window (each rating counts once), None when nobody rated."""
        ratings = sum(d.ratings for d in self.days)
        if not ratings:
            return None
        return sum(d.satisfaction * d.ratings for d in self.days if d.satisfaction is not None) / ratings


# --- Selectors ---------------------------------------------------------------------------------


def dashboard_window(*, now: datetime, days: int = WINDOW_DAYS) -> Window:
    """The last ``days`` calendar days in the current time zone, today included."""
    today = local_date(now)
    first_day = today - timedelta(days=days - 1)
    return Window(
        first_day=first_day,
        last_day=today,
        start=day_start(first_day),
        end=day_start(today + timedelta(days=1)),
        tz=timezone.get_default_timezone(),
    )


def dashboard_days(*, window: Window) -> list[DayFigures]:
    """Per day: offer sets made and their options (by ``created_at``); outcomes recorded, accepted,
    their cost and average satisfaction (by ``recorded_at``). Two grouped queries."""
    made = (
        OfferSet.objects.filter(created_at__gte=window.start, created_at__lt=window.end)
        .annotate(day=TruncDate("created_at", tzinfo=window.tz))
        .values("day")
        .annotate(offer_sets=Count("pk", distinct=True), offers=Count("offers"))
        .order_by()  # no Meta.ordering in the GROUP BY
    )
    recorded = (
        Outcome.objects.filter(recorded_at__gte=window.start, recorded_at__lt=window.end)
        .annotate(day=TruncDate("recorded_at", tzinfo=window.tz))
        .values("day")
        .annotate(
            outcomes=Count("pk"),
            accepted=Count("pk", filter=Q(accepted=True)),
            total_cost=Sum("cost"),
            average_satisfaction=Avg("satisfaction"),
            ratings=Count("satisfaction"),
        )
        .order_by()
    )
    made_by_day = {row["day"]: row for row in made}
    recorded_by_day = {row["day"]: row for row in recorded}
    figures = []
    for day in window.days:
        m = made_by_day.get(day, {})
        r = recorded_by_day.get(day, {})
        figures.append(
            DayFigures(
                day=day,
                offer_sets=m.get("offer_sets", 0),
                offers=m.get("offers", 0),
                outcomes=r.get("outcomes", 0),
                accepted=r.get("accepted", 0),
                cost=r.get("total_cost") or Decimal("0.00"),
                satisfaction=float(r["average_satisfaction"]) if r.get("average_satisfaction") is not None else None,
                ratings=r.get("ratings", 0),
            )
        )
    return figures


def dashboard_remedy_cost(*, window: Window) -> Decimal:
    """What the remedies given in the window cost (by ``given_at``, as the reports count them). One aggregate."""
    total = Remedy.objects.filter(
        status=Remedy.Status.GIVEN, given_at__gte=window.start, given_at__lt=window.end
    ).aggregate(total=Sum("estimated_cost"))["total"]
    return total or Decimal("0.00")


def dashboard_policy_acceptance(*, window: Window, limit: int = TOP_POLICIES) -> list[PolicyAcceptance]:
    """Per policy, over the offer sets whose outcome was recorded in the window: how many options it
    gave (offered) and how many of those the customer chose (chosen), most offered first.

    Both counts come from one grouped query over the options the recorder kept (``OutcomeOption``).
    """
    rows = (
        OutcomeOption.objects.filter(recorded_at__gte=window.start, recorded_at__lt=window.end)
        .values("policy_id", "policy__name")
        .annotate(offered=Count("pk"), chosen=Count("pk", filter=Q(chosen=True)))
        .order_by("-offered", "policy_id")[:limit]
    )
    return [
        PolicyAcceptance(policy_id=r["policy_id"], name=r["policy__name"], offered=r["offered"], chosen=r["chosen"])
        for r in rows
    ]


def dashboard_escalations(*, now: datetime, limit: int = MOST_OVERDUE) -> EscalationFigures:
    """Escalations not closed now, how many are acknowledged and overdue, and the most overdue."""
    counts = Escalation.objects.filter(status__in=NOT_CLOSED).aggregate(
        open=Count("pk"),
        acknowledged=Count("pk", filter=Q(status=Escalation.Status.ACKNOWLEDGED)),
        overdue=Count("pk", filter=Q(due_at__lt=now)),
    )
    rows = (
        Escalation.objects.filter(status__in=NOT_CLOSED, due_at__lt=now)
        .order_by("due_at", "pk")
        .values("pk", "kind", "status", "due_at", "reason", "customer__external_id", "customer__name")[:limit]
    )
    most_overdue = [
        OverdueEscalation(
            id=r["pk"],
            kind=Escalation.Kind(r["kind"]).label,
            status=Escalation.Status(r["status"]).label,
            due_at=r["due_at"],
            customer=r["customer__name"] or r["customer__external_id"],
            reason=r["reason"],
            overdue_by=now - r["due_at"],
        )
        for r in rows
    ]
    return EscalationFigures(
        open=counts["open"], acknowledged=counts["acknowledged"], overdue=counts["overdue"], most_overdue=most_overdue
    )


def dashboard_learning(*, limit: int = TOP_LEARNED) -> list[CategoryLearning]:
    """Per category with learned data (by slug, as the learning report orders them): its top ``limit`` offers
    by ``propensity_mean``, from :func:`reporting.learning.learning_rows` (two queries)."""
    learned = []
    for slug, rows in groupby(learning_rows(), key=lambda row: row.category_slug):  # by category, mean descending
        ranked = list(rows)
        learned.append(
            CategoryLearning(slug=slug, name=ranked[0].category_name, offers=len(ranked), top=ranked[:limit])
        )
    return learned


def dashboard_budgets(*, now: datetime) -> Budgets:
    """Every active policy with a monthly cap and what it has spent in ``now``'s month (TIME_ZONE), the
    largest share of the cap first (then by name): one query."""
    month = month_start(now)
    rows = (
        Policy.objects.filter(active=True, monthly_cap__isnull=False)
        .annotate(month_spent=policy_month_spent(month))
        .values_list("pk", "name", "monthly_cap", "month_spent")
    )
    policies = [PolicyBudget(pk, name, MonthBudget(cap=cap, spent=spent)) for pk, name, cap, spent in rows]
    policies.sort(key=lambda p: (-(p.budget.share or 0), p.name, p.policy_id))
    return Budgets(month=month, policies=policies)


def dashboard_get(*, now: datetime, days: int = WINDOW_DAYS) -> Dashboard:
    """Everything the dashboard shows, in nine queries."""
    window = dashboard_window(now=now, days=days)
    return Dashboard(
        window=window,
        currency=settings.DEFAULT_CURRENCY,
        days=dashboard_days(window=window),
        policies=dashboard_policy_acceptance(window=window),
        escalations=dashboard_escalations(now=now),
        remedy_cost=dashboard_remedy_cost(window=window),
        learning=dashboard_learning(),
        budgets=dashboard_budgets(now=now),
    )


# --- Charts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LearningChart:
    """One category's chart of its top offers' intervals."""

    name: str
    chart_id: str
    svg: SafeString


@dataclass(frozen=True)
class DashboardCharts:
    offers: SafeString
    cost: SafeString
    acceptance: SafeString
    satisfaction: SafeString
    learning: list[LearningChart]  # one per category with learned data; one saying so when there is none
    budgets: SafeString


def _day_label(day: date) -> str:
    return f"{day:%b} {day.day}"


def dashboard_charts(dashboard: Dashboard) -> DashboardCharts:
    """The dashboard's figures drawn as inline SVG."""
    days = dashboard.days
    labels = [_day_label(d.day) for d in days]
    period = f"{_day_label(dashboard.window.first_day)} to {_day_label(dashboard.window.last_day)}"
    x_label = f"Day ({dashboard.window.tz})"
    rated = [d for d in days if d.satisfaction is not None]
    return DashboardCharts(
        offers=charts.bar_chart(
            chart_id="chart-offers",
            title="Offers made and accepted per day",
            summary=(
                f"{period}: {dashboard.offer_sets} offer sets made, "
                f"{dashboard.accepted} options accepted of {dashboard.outcomes} outcomes recorded."
            ),
            labels=labels,
            series=[
                charts.Series("offer sets made", [d.offer_sets for d in days]),
                charts.Series("accepted", [d.accepted for d in days]),
            ],
            x_label=x_label,
            y_label="Count",
            empty_message="No offers made or accepted in the last 30 days.",
        ),
        cost=charts.bar_chart(
            chart_id="chart-cost",
            title="Cost per day",
            summary=f"{period}: {dashboard.cost} {dashboard.currency} in total.",
            labels=labels,
            series=[charts.Series(f"cost ({dashboard.currency})", [float(d.cost) for d in days])],
            x_label=x_label,
            y_label=f"Cost ({dashboard.currency})",
            fmt=charts.money_format,
            integer=False,
            empty_message="Nothing was spent in the last 30 days.",
        ),
        acceptance=charts.hbar_chart(
            chart_id="chart-acceptance",
            title="Acceptance rate per policy",
            summary=(
                f"{period}: for the {len(dashboard.policies)} policies that gave most options, "
                "the share of their options customers chose."
            ),
            rows=[charts.HBar(p.name, p.rate, f"{p.rate:.0%} ({p.chosen} of {p.offered})") for p in dashboard.policies],
            x_label="Options chosen / options offered",
            empty_message="No outcomes recorded in the last 30 days.",
        ),
        satisfaction=charts.line_chart(
            chart_id="chart-satisfaction",
            title="Satisfaction trend",
            summary=f"{period}: average satisfaction (1 to 5) on the {len(rated)} days with ratings.",
            labels=labels,
            series=charts.Series("average satisfaction", [d.satisfaction for d in days]),
            x_label=x_label,
            y_label="Average rating (1–5)",
            y_max=SATISFACTION_MAX,
            fmt=lambda v: f"{v:.1f}" if v % 1 else f"{v:.0f}",
            empty_message="No satisfaction ratings in the last 30 days.",
        ),
        learning=learning_charts(dashboard.learning),
        budgets=budget_chart(dashboard.budgets),
    )


def _amount(value: Decimal) -> str:
    return f"{value:,.2f}"


def budget_flag(budget: MonthBudget) -> str:
    """What a capped policy's spend this month says in words: "over cap", "at cap", "past 80%", or nothing."""
    share = budget.share or Decimal(0)
    if share > 1:
        return "over cap"
    if share == 1:
        return "at cap"
    return "past 80%" if budget.near_cap else ""


def budget_chart(budgets: Budgets, *, limit: int = TOP_BUDGETS) -> SafeString:
    """The capped policies nearest their cap, each bar its share of the cap spent this month (0 to 100%; more
    stops at the end), a dashed line at 80%, those at 80% or more flagged in words."""
    month = f"{budgets.month:%B %Y}"
    shown = budgets.policies[:limit]
    near = budgets.near_cap
    summary = (
        f"{month}: {len(budgets.policies)} active policies with a monthly cap"
        + (f", the {len(shown)} nearest their cap shown" if len(shown) < len(budgets.policies) else "")
        + ". "
        + (
            f"{len(near)} at 80% or more: " + ", ".join(f"{p.name} ({p.budget.percent}%)" for p in near) + "."
            if near
            else "None has spent 80% of its cap."
        )
    )
    rows = []
    for p in shown:
        flag = budget_flag(p.budget)
        percent = f"{p.budget.percent}%, {flag}" if flag else f"{p.budget.percent}%"
        text = f"{_amount(p.budget.spent)} / {_amount(p.budget.cap)} ({percent})"
        rows.append(charts.HBar(label=p.name, value=float(p.budget.share), text=text, flagged=bool(flag)))
    return charts.hbar_chart(
        chart_id="chart-budgets",
        title=f"Budgets this month: spend against the monthly cap ({month})",
        summary=summary,
        rows=rows,
        x_label="Share of the monthly cap spent",
        empty_message="No active policy has a monthly cap.",
        marker=float(BUDGET_ALERT_SHARE),
        marker_label="80%",
        value_width=BUDGET_VALUE_WIDTH,
    )


def _percent(value: float) -> str:
    """A share as a percentage with one decimal, or none where it is whole: 35.7%, 50%."""
    text = f"{value * 100:.1f}".removesuffix(".0")
    return f"{text}%"


def learning_charts(learned: list[CategoryLearning]) -> list[LearningChart]:
    """Per category, its top offers' 90% credible intervals as ranges and their means as marks."""
    if not learned:
        return [
            LearningChart(
                name="",
                chart_id="chart-learning",
                svg=charts.range_chart(
                    chart_id="chart-learning",
                    title="Top offers' estimated acceptance",
                    summary="No offer has been shown in a set with a recorded outcome yet: nothing is learned.",
                    rows=[],
                    x_label="Estimated share of customers choosing the offer",
                    empty_message="Nothing learned yet: no outcomes recorded.",
                ),
            )
        ]
    drawn = []
    for category in learned:
        chart_id = f"chart-learning-{category.slug}"
        best = category.top[0]
        rows = [
            charts.RangeRow(
                # The kind in words: the title is a template ("{value}% off …"), unreadable cut short.
                label=f"{row.policy_name} · {OFFER_KIND_WORDS.get(row.offer_kind, row.offer_kind)}",
                low=row.interval[0],
                high=row.interval[1],
                mark=row.propensity_mean,
                text=f"{_percent(row.propensity_mean)} ({row.interval[0]:.0%}–{row.interval[1]:.0%})",
                tooltip=(
                    f"{row.offer_title}: 90% interval {_percent(row.interval[0])} to {_percent(row.interval[1])}, mean "
                    f"{_percent(row.propensity_mean)}; chosen {row.counts.chosen} of {row.counts.shown} times "
                    f"shown, where about {row.expected:.1f} choices were expected at its positions"
                ),
            )
            for row in category.top
        ]
        drawn.append(
            LearningChart(
                name=category.name,
                chart_id=chart_id,
                svg=charts.range_chart(
                    chart_id=chart_id,
                    title=f"{category.name}: top offers' estimated acceptance",
                    summary=(
                        f"{category.name}: the {len(rows)} offers with the highest estimated acceptance of the "
                        f"{category.offers} shown so far, each with its 90% credible interval. First: "
                        f"{best.policy_name} · {best.offer_title}, {_percent(best.propensity_mean)} "
                        f"({_percent(best.interval[0])} to {_percent(best.interval[1])})."
                    ),
                    rows=rows,
                    x_label="Estimated share of customers choosing the offer (90% interval and mean)",
                ),
            )
        )
    return drawn
