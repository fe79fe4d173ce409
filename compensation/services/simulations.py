"""Simulating a policy pack: every recent incident replayed against the live policies and the draft.

The replay is the request path's own engine and ranking (``compensation.replay``: ``engine.replay``
pricing only the offers that can be shown) over the stored incidents,
each with its stored facts and its customer's current facts, and the learning counters read once.
Ranking uses posterior means (no exploration); budgets, caps and recent perks exclude nothing. Nothing is
written and no budget moves: a simulation reads, and a live request never sees its draft index.

An incident the draft cannot change is not replayed twice: when no policy the pack changes matches it
before or after (and the pack changes none of its category and no perk), the draft gives it exactly what
the live policies give, so the "after" side reuses the "before" one. ``workers`` > 1 splits the incidents
into ranges replayed by forked processes (the management command and the benchmark; a Celery task runs
in one process, so it never takes the worker's other processes from recording).
"""

from __future__ import annotations

import calendar
import multiprocessing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Max, Min, Value
from django.db.models.functions import Mod
from django.utils import timezone

from compensation import engine
from compensation.engine_types import Candidate, CustomerFacts, IncidentFacts
from compensation.learning import LearningStats
from compensation.models import Incident, PolicyMonthSpend
from compensation.periods import local_date, month_start
from compensation.ranking import Scored
from compensation.replay import ReplayPlan, replay_incident, replay_plan
from compensation.selectors import learning_stats_by_category
from policies.choices import OfferKind
from policies.drafts import Draft, draft_index
from policies.index import CompiledPolicy, PolicyIndex, policy_index_get
from policies.money import money

DAYS_MIN, DAYS_MAX = 1, 365
EXAMPLES = 20
CENT = Decimal("0.01")
ZERO = Decimal("0")
NO_STATS = LearningStats()
PROGRESS_EVERY = 2_000  # incidents between progress reports in one process
MIN_PER_WORKER = 5_000  # fewer incidents than this per process: not worth forking

Progress = Callable[[float], None]


class SimulationError(ValueError):
    """A simulation that cannot run as asked (``--days`` out of range); nothing was read or written."""


# --- What one process tallies --------------------------------------------------------------


@dataclass
class PolicyTally:
    shown_before: int = 0
    shown_after: int = 0
    cost_before: Decimal = ZERO
    cost_after: Decimal = ZERO


@dataclass
class Tally:
    """The replay's figures over a range of incidents; ranges add up (:meth:`merge`)."""

    incidents: int = 0
    replayed_after: int = 0  # incidents the draft could change, replayed on its side too
    changed: int = 0
    no_options_before: int = 0
    no_options_after: int = 0
    cost_before: Decimal = ZERO  # options' expected cost plus remedies'
    cost_after: Decimal = ZERO
    policies: dict[int, PolicyTally] = field(default_factory=dict)
    unmatched: set[int] | None = None  # the draft's policies whose conditions held for no incident yet
    shown_after: set[int] = field(default_factory=set)  # offer templates shown at least once
    examples: list[dict[str, Any]] = field(default_factory=list)

    def policy(self, policy_id: int) -> PolicyTally:
        tally = self.policies.get(policy_id)
        if tally is None:
            tally = self.policies[policy_id] = PolicyTally()
        return tally

    def merge(self, other: Tally) -> None:
        for name in (
            "incidents",
            "replayed_after",
            "changed",
            "no_options_before",
            "no_options_after",
            "cost_before",
            "cost_after",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for policy_id, theirs in other.policies.items():
            mine = self.policy(policy_id)
            mine.shown_before += theirs.shown_before
            mine.shown_after += theirs.shown_after
            mine.cost_before += theirs.cost_before
            mine.cost_after += theirs.cost_after
        if other.unmatched is not None:
            self.unmatched = other.unmatched if self.unmatched is None else self.unmatched & other.unmatched
        self.shown_after |= other.shown_after
        self.examples.extend(other.examples[: max(0, EXAMPLES - len(self.examples))])


# --- The replay ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    """Everything a process needs to replay incidents: read before it starts (or forks), never written."""

    before: PolicyIndex
    draft: Draft
    days: int
    since: datetime
    until: datetime
    sample_every: int
    currency_locale: str
    window_days: int
    plans_before: dict[int, ReplayPlan]  # by category id
    plans_after: dict[int, ReplayPlan]
    changed_before: dict[int, tuple[CompiledPolicy, ...]]  # the policies the draft changes, per category, as live
    changed_after: dict[int, tuple[CompiledPolicy, ...]]  # and as the draft has them

    @property
    def after(self) -> PolicyIndex:
        return self.draft.index


def replay_prepare(
    document: Any, *, days: int, now: datetime, sample_every: int = 1, before: PolicyIndex | None = None
) -> Replay:
    """Validate the draft (``packs.PackError`` with the import's errors), build its index and read the
    learning counters once."""
    if isinstance(days, bool) or not isinstance(days, int) or not DAYS_MIN <= days <= DAYS_MAX:
        raise SimulationError(f"days must be a whole number from {DAYS_MIN} to {DAYS_MAX}, got {days!r}")
    before = before if before is not None else policy_index_get()
    draft = draft_index(document, live=before)
    after = draft.index
    stats = learning_stats_by_category()
    correction = settings.RANKING_POSITION_CORRECTION == "on"

    def plans(index: PolicyIndex) -> dict[int, ReplayPlan]:
        return {
            category.id: replay_plan(index, category.id, stats.get(category.id, NO_STATS), correction=correction)
            for category in index.categories.values()
        }

    def changed(index: PolicyIndex) -> dict[int, tuple[CompiledPolicy, ...]]:
        return {
            category.id: tuple(p for p in index.policies_for(category.id) if p.id in draft.changed_ids)
            for category in index.categories.values()
        }

    return Replay(
        before=before,
        draft=draft,
        days=days,
        since=now - timedelta(days=days),
        until=now,
        sample_every=max(1, sample_every),
        currency_locale=settings.MONEY_LOCALE,
        window_days=settings.INCIDENT_REPEAT_WINDOW_DAYS,
        plans_before=plans(before),
        plans_after=plans(after),
        changed_before=changed(before),
        changed_after=changed(after),
    )


def _window(replay: Replay):
    return Incident.objects.filter(created_at__gte=replay.since, created_at__lte=replay.until)


def _incidents(replay: Replay, low: int | None = None, high: int | None = None):
    rows = _window(replay)
    if low is not None:
        rows = rows.filter(pk__gte=low, pk__lte=high)
    if replay.sample_every > 1:
        rows = rows.annotate(sample_slot=Mod("pk", Value(replay.sample_every))).filter(sample_slot=0)
    return rows


def incident_range(replay: Replay) -> tuple[int | None, int | None, int]:
    """The lowest and highest id among the incidents replayed, and how many there are (before sampling)."""
    window = _window(replay)
    bounds = window.aggregate(low=Min("pk"), high=Max("pk"))
    return bounds["low"], bounds["high"], window.count()


FACT_COLUMNS = (
    "pk",
    "category_id",
    "severity",
    "fault",
    "correctable",
    "order_value",
    "currency",
    "occurred_at",
    "repeat_count",
    "same_category_repeat_count",
    "external_ref",
    "customer_id",
    "customer__external_id",
    "customer__name",
    "customer__tier",
    "customer__lifetime_value",
    "customer__interests",
)


def _facts(
    replay: Replay, low: int | None, high: int | None
) -> Iterator[tuple[int, str, CustomerFacts, IncidentFacts]]:
    """Each incident with its stored facts and its customer's current ones, in id order."""
    names = {category.id: category.name for category in replay.before.categories.values()}
    names.update({category.id: category.name for category in replay.after.categories.values()})
    customers: dict[int, CustomerFacts] = {}
    rows = _incidents(replay, low, high).order_by("pk").values_list(*FACT_COLUMNS)
    for row in rows.iterator(chunk_size=5_000):
        (pk, category_id, severity, fault, correctable, order_value, currency, occurred_at, repeats, same) = row[:10]
        ticket, customer_id = row[10], row[11]
        customer = customers.get(customer_id)
        if customer is None:
            customer = customers[customer_id] = CustomerFacts(
                external_id=row[12],
                name=row[13],
                tier=row[14],
                lifetime_value=row[15],
                interests=frozenset(row[16] or ()),
            )
        incident = IncidentFacts(
            category_id=category_id,
            category_name=names.get(category_id, ""),
            severity=severity,
            fault=fault,
            correctable=correctable,
            order_value=order_value,
            repeat_count=repeats,
            same_category_repeat_count=same,
            occurred_on=local_date(occurred_at),
            window_days=replay.window_days,
            ticket=ticket or "",
        )
        yield pk, currency, customer, incident


def _replayed(
    replay: Replay, after: bool, customer: CustomerFacts, incident: IncidentFacts, unmatched: set[int] | None
) -> engine.Replayed | None:
    """The options one side gives; None when it has no such (active) category, as a request for it would be
    refused."""
    index = replay.after if after else replay.before
    if incident.category_id not in index.categories_by_id:
        return None
    incident = _named(index, incident)
    plan = (replay.plans_after if after else replay.plans_before)[incident.category_id]
    return replay_incident(
        plan, customer, incident, unmatched=unmatched, watched=index.policies_for(incident.category_id)
    )


def _affected(replay: Replay, customer: CustomerFacts, incident: IncidentFacts) -> bool:
    """Whether the draft can give this incident anything else than the live policies give it: a policy it
    changes matches it before or after, or it changes its category or a perk."""
    draft = replay.draft
    if draft.perks_changed or incident.category_id in draft.categories_changed:
        return True
    for changed in (replay.changed_before, replay.changed_after):
        for policy in changed.get(incident.category_id, ()):
            if engine.first_failed_condition(policy, customer, incident) is None:
                return True
    return False


_DECIMALS: dict[float, Decimal] = {}


def _expected(item: Scored) -> Decimal:
    """The option's expected cost: its estimated cost times its propensity mean, as options show it."""
    mean = item.propensity
    factor = _DECIMALS.get(mean)
    if factor is None:
        factor = _DECIMALS[mean] = Decimal(repr(engine.ranking.shown_round(mean)))
    return item.candidate.estimated_cost * factor


def _add_side(tally: Tally, result: engine.Replayed | None, *, after: bool) -> bool:
    """Count one side of one incident; returns whether it had options."""
    if result is None or not result.options:
        return False
    total = ZERO
    for item in result.options:
        cost = _expected(item)
        total += cost
        policy = tally.policy(item.candidate.policy.id)
        if after:
            policy.shown_after += 1
            policy.cost_after += cost
            tally.shown_after.add(item.candidate.offer.id)
        else:
            policy.shown_before += 1
            policy.cost_before += cost
    total += sum((remedy.estimated_cost for remedy in result.remedies), ZERO)
    if after:
        tally.cost_after += total
    else:
        tally.cost_before += total
    return True


def _title(candidate: Candidate, customer: CustomerFacts, incident: IncidentFacts, currency: str, locale: str) -> str:
    return engine.render(candidate.offer.title, candidate, customer, incident, currency, locale=locale)


def _same_candidate(
    a: Candidate,
    b: Candidate,
    customer: CustomerFacts,
    incident_a: IncidentFacts,
    incident_b: IncidentFacts,
    currency: str,
    locale: str,
) -> bool:
    """Same policy, kind, estimated cost and title (rendered only when its inputs differ)."""
    if a.policy.slug != b.policy.slug or a.kind != b.kind or a.estimated_cost != b.estimated_cost:
        return False
    if (
        a.offer.title == b.offer.title
        and a.value == b.value
        and a.amount == b.amount
        and a.perk == b.perk
        and incident_a.category_name == incident_b.category_name
    ):
        return True
    return _title(a, customer, incident_a, currency, locale) == _title(b, customer, incident_b, currency, locale)


def _changed(
    replay: Replay,
    before: engine.Replayed | None,
    after: engine.Replayed | None,
    customer: CustomerFacts,
    incident: IncidentFacts,
    currency: str,
) -> bool:
    """Whether any shown option differs in label, policy, kind, title or estimated cost, or the remedy differs."""
    if before is after:
        return False
    b_options = before.options if before else []
    a_options = after.options if after else []
    b_remedies = before.remedies if before else []
    a_remedies = after.remedies if after else []
    if len(b_options) != len(a_options) or len(b_remedies) != len(a_remedies):
        return True
    incident_b = _named(replay.before, incident)
    incident_a = _named(replay.after, incident)
    locale = replay.currency_locale
    pairs = [*zip((o.candidate for o in b_options), (o.candidate for o in a_options), strict=True)]
    pairs += zip(b_remedies, a_remedies, strict=True)
    return not all(_same_candidate(b, a, customer, incident_b, incident_a, currency, locale) for b, a in pairs)


def _named(index: PolicyIndex, incident: IncidentFacts) -> IncidentFacts:
    category = index.categories_by_id.get(incident.category_id)
    if category is None or category.name == incident.category_name:
        return incident
    return replace(incident, category_name=category.name)


def _example_options(
    replay: Replay,
    index: PolicyIndex,
    result: engine.Replayed | None,
    customer: CustomerFacts,
    incident: IncidentFacts,
    currency: str,
) -> list[dict[str, Any]]:
    if result is None:
        return []
    incident = _named(index, incident)
    return [
        {
            "label": "abc"[position],
            "kind": item.candidate.kind,
            "title": _title(item.candidate, customer, incident, currency, replay.currency_locale),
            "policy": item.candidate.policy.slug,
            "estimated_cost": money(item.candidate.estimated_cost),
        }
        for position, item in enumerate(result.options)
    ]


def replay_range(
    replay: Replay, low: int | None = None, high: int | None = None, progress: Progress | None = None
) -> Tally:
    """Replay the incidents with ids from ``low`` to ``high`` (all of the window with None) on both sides."""
    tally = Tally(unmatched=set(replay.after.policies))
    unmatched = tally.unmatched
    total = progress and _incidents(replay, low, high).count()
    for n, (pk, currency, customer, incident) in enumerate(_facts(replay, low, high), start=1):
        if _affected(replay, customer, incident):
            before = _replayed(replay, False, customer, incident, None)
            after = _replayed(replay, True, customer, incident, unmatched)
            tally.replayed_after += 1
        else:  # the live policies' options are the draft's; and which policies match, but for those it changes
            before = after = _replayed(replay, False, customer, incident, unmatched)
        tally.incidents += 1
        if not _add_side(tally, before, after=False):
            tally.no_options_before += 1
        if not _add_side(tally, after, after=True):
            tally.no_options_after += 1
        if _changed(replay, before, after, customer, incident, currency):
            tally.changed += 1
            if len(tally.examples) < EXAMPLES:
                tally.examples.append(
                    {
                        "incident": pk,
                        "before": _example_options(replay, replay.before, before, customer, incident, currency),
                        "after": _example_options(replay, replay.after, after, customer, incident, currency),
                    }
                )
        if progress and n % PROGRESS_EVERY == 0:
            progress(min(1.0, n / total))
    return tally


# --- Running it: one process or several -------------------------------------------------------

_FORKED: Replay | None = None  # the replay a forked process inherits


def _forked_range(bounds: tuple[int, int]) -> Tally:
    assert _FORKED is not None
    return replay_range(_FORKED, *bounds)


def _ranges(low: int, high: int, parts: int) -> list[tuple[int, int]]:
    step = max(1, -(-(high - low + 1) // parts))
    return [(start, min(high, start + step - 1)) for start in range(low, high + 1, step)]


def replay_all(replay: Replay, *, workers: int = 1, progress: Progress | None = None) -> Tally:
    """Every incident of the window, in ``workers`` processes (forked; one where forking is not possible)."""
    low, high, count = incident_range(replay)
    if low is None:
        return Tally()
    workers = max(1, min(workers, count // MIN_PER_WORKER or 1))
    if (
        workers == 1
        or multiprocessing.current_process().daemon
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return replay_range(replay, progress=progress)
    global _FORKED
    _FORKED = replay
    parts = _ranges(low, high, workers * 4)  # several ranges each, so progress moves and the load evens out
    connections.close_all()  # each process opens its own connection
    tally = Tally()
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for done, part in enumerate(pool.imap(_forked_range, parts), start=1):
                tally.merge(part)
                if progress:
                    progress(done / len(parts))
    finally:
        _FORKED = None
    return tally


# --- The result ----------------------------------------------------------------------------


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _month_days_left(today: date) -> int:
    """Days after ``today`` to the end of its month."""
    return calendar.monthrange(today.year, today.month)[1] - today.day


def _cap_reached_on(*, today: date, spent: Decimal, daily: Decimal, cap: Decimal | None) -> date | None:
    """The first day after ``today`` this month on which ``spent + daily × days`` passes ``cap``."""
    if cap is None or daily <= 0:
        return None
    days = int((cap - spent) // daily) + 1 if spent <= cap else 1
    day = today + timedelta(days=max(1, days))
    return day if day.month == today.month and day.year == today.year else None


def simulation_result(replay: Replay, tally: Tally, *, now: datetime, sampled_of: int | None = None) -> dict[str, Any]:
    """The figures as ``simulate_policies --json`` prints them (API.md)."""
    before, after = replay.before, replay.after
    today = local_date(now)
    days_left = _month_days_left(today)
    scale = Decimal(replay.sample_every)
    spent = dict(PolicyMonthSpend.objects.filter(month=month_start(now)).values_list("policy_id", "spent"))
    policies: dict[int, CompiledPolicy] = {**before.policies, **after.policies}
    rows = []
    warnings_unmatched, warnings_unshown, warnings_caps = [], [], []
    for policy_id, policy in sorted(policies.items(), key=lambda pair: pair[1].slug):
        figures = tally.policies.get(policy_id, PolicyTally())
        month_spent = _cents(spent.get(policy_id, ZERO))
        daily = figures.cost_after * scale / replay.days if policy_id in after.policies else ZERO
        projected = _cents(month_spent + daily * days_left)
        cap = policy.monthly_cap
        reached = _cap_reached_on(today=today, spent=month_spent, daily=daily, cap=cap)
        rows.append(
            {
                "slug": policy.slug,
                "shown_before": figures.shown_before,
                "shown_after": figures.shown_after,
                "expected_cost_before": money(_cents(figures.cost_before)),
                "expected_cost_after": money(_cents(figures.cost_after)),
                "monthly_cap": money(cap),
                "month_spent": money(month_spent),
                "projected_month_spend": money(projected),
                "cap_reached_on": reached.isoformat() if reached else None,
            }
        )
        if policy_id not in after.policies:
            continue
        if not tally.incidents:
            continue  # one warning says there was nothing to replay
        if tally.unmatched is None or policy_id in tally.unmatched:
            warnings_unmatched.append(
                f"policy {policy.slug!r} matches none of the {tally.incidents:,} incidents of the last "
                f"{replay.days} days"
            )
            continue
        for position, offer in enumerate(policy.offers, start=1):
            if offer.id not in tally.shown_after:
                warnings_unshown.append(
                    f"policy {policy.slug!r}: offer {position} ({OfferKind(offer.kind).label}, {offer.title!r}) "
                    "is never shown"
                )
        if reached is not None:
            warnings_caps.append(
                f"policy {policy.slug!r}: projected spend {money(projected)} passes its monthly cap {money(cap)} "
                f"on {reached.isoformat()}"
            )
    result: dict[str, Any] = {
        "days": replay.days,
        "incidents": tally.incidents,
        "changed": tally.changed,
        "no_options_before": tally.no_options_before,
        "no_options_after": tally.no_options_after,
        "expected_cost_before": money(_cents(tally.cost_before)),
        "expected_cost_after": money(_cents(tally.cost_after)),
        "policies": rows,
        "warnings": (
            [f"no incident was created in the last {replay.days} days: there was nothing to replay"]
            if not tally.incidents
            else warnings_unmatched + warnings_unshown + warnings_caps
        ),
        "examples": tally.examples[:EXAMPLES],
    }
    if replay.sample_every > 1:
        result["sample"] = {"every": replay.sample_every, "incidents": tally.incidents, "of": sampled_of}
    return result


def simulate_policies(
    document: Any,
    *,
    days: int = 30,
    now: datetime | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    sample_every: int = 1,
) -> dict[str, Any]:
    """Replay the last ``days`` days of incidents against the live policies and against them with the pack
    ``document`` applied as an import would (``--replace`` not implied). Writes nothing.

    Raises ``packs.PackError`` (the import's errors) or :class:`SimulationError`.
    """
    now = now or timezone.now()
    replay = replay_prepare(document, days=days, now=now, sample_every=sample_every)
    tally = replay_all(replay, workers=workers, progress=progress)
    of = incident_range(replay)[2] if sample_every > 1 else None
    return simulation_result(replay, tally, now=now, sampled_of=of)
