"""The learning report: what the ranking has learned, as it stands (API.md v2, "Learning that can be trusted").

One row per offer template and category shown at least once, from the
counters the recording worker keeps (``AcceptanceStat``, summed over its
shards) and the category's position shares (``PositionStat``, summed over its
shards). The posterior is the one the engine ranks with
(:func:`compensation.learning.posterior`), with the current
``RANKING_POSITION_CORRECTION``: ``expected`` is ``Σ_p shown_at[p] ×
share[p]`` with correction on and ``shown × p0`` with it off;
``propensity_mean`` its mean and ``interval`` its 90% credible interval.

Two grouped queries, whatever the number of rows: the offer counters with
their template, policy and category, and the categories' position shares
(a few rows per category: one per shard). A template deleted since is gone with its counters
(``on_delete=CASCADE``).

Rounding: ``propensity_mean`` and the interval's bounds as options show
figures (four significant digits, :func:`compensation.ranking.shown_round`);
``expected`` to four decimal places. Order: by category slug, then
``propensity_mean`` (as shown) descending, then policy id, then offer id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import F, Sum

from compensation import learning
from compensation.learning import OfferCounts, PositionCounts
from compensation.models import AcceptanceStat, PositionStat
from compensation.ranking import shown_round
from compensation.services.offer_sets import learning_mode
from policies.models import Category, Policy

EXPECTED_DECIMALS = 4


@dataclass(frozen=True, slots=True)
class LearningRow:
    """One offer template in one category: its counters and the posterior they give."""

    category_id: int
    category_slug: str
    category_name: str
    policy_id: int
    policy_name: str
    offer_id: int  # the OfferTemplate's id
    offer_kind: str
    offer_title: str  # the title template as stored
    counts: OfferCounts
    expected: float  # rounded to EXPECTED_DECIMALS places
    propensity_mean: float  # four significant digits
    interval: tuple[float, float]  # the 90% credible interval, four significant digits

    @property
    def sort_key(self) -> tuple[str, float, int, int]:
        return (self.category_slug, -self.propensity_mean, self.policy_id, self.offer_id)

    def payload(self) -> dict[str, Any]:
        """The row as ``GET /api/v1/reports/learning/`` shows it."""
        counts = self.counts
        return {
            "policy": {"id": self.policy_id, "name": self.policy_name},
            "offer": {"id": self.offer_id, "kind": self.offer_kind, "title": self.offer_title},
            "category": self.category_slug,
            "shown": counts.shown,
            "shown_at": {"a": counts.shown_a, "b": counts.shown_b, "c": counts.shown_c},
            "chosen": counts.chosen,
            "expected": self.expected,
            "propensity_mean": self.propensity_mean,
            "interval": list(self.interval),
        }


def learning_rows(
    *, category: Category | None = None, policy: Policy | None = None, correction: bool | None = None
) -> list[LearningRow]:
    """The model as it stands, one row per offer template and category shown at least once, in the
    report's order; filtered to one category and one policy when given. ``correction``: position
    correction on or off (default: ``RANKING_POSITION_CORRECTION``, as the engine ranks now)."""
    if correction is None:
        correction = learning_mode().correction
    stats = AcceptanceStat.objects.all()
    if category is not None:
        stats = stats.filter(category=category)
    if policy is not None:
        stats = stats.filter(offer_template__policy=policy)
    offers = (
        stats.values(
            "category_id",
            "category__slug",
            "category__name",
            "offer_template_id",
            "offer_template__kind",
            "offer_template__title",
            "offer_template__policy_id",
            "offer_template__policy__name",
        )
        .annotate(a=Sum("shown_a"), b=Sum("shown_b"), c=Sum("shown_c"), times_chosen=Sum("chosen"))
        .annotate(times_shown=F("a") + F("b") + F("c"))
        .filter(times_shown__gt=0)
        .order_by()
    )
    shares = PositionStat.objects.all() if category is None else PositionStat.objects.filter(category=category)
    positions = {
        row["category_id"]: PositionCounts(row["n"], row["a"], row["b"], row["c"])
        for row in shares.values("category_id")
        .annotate(n=Sum("outcomes"), a=Sum("chosen_a"), b=Sum("chosen_b"), c=Sum("chosen_c"))
        .order_by()
    }
    rows = []
    for row in offers:
        counts = OfferCounts(int(row["a"]), int(row["b"]), int(row["c"]), int(row["times_chosen"]))
        position = positions.get(row["category_id"], PositionCounts())
        posterior = learning.posterior(counts, position.shares, correction=correction)
        low, high = learning.interval(posterior.alpha, posterior.beta)
        rows.append(
            LearningRow(
                category_id=row["category_id"],
                category_slug=row["category__slug"],
                category_name=row["category__name"],
                policy_id=row["offer_template__policy_id"],
                policy_name=row["offer_template__policy__name"],
                offer_id=row["offer_template_id"],
                offer_kind=row["offer_template__kind"],
                offer_title=row["offer_template__title"],
                counts=counts,
                expected=round(posterior.expected, EXPECTED_DECIMALS),
                propensity_mean=shown_round(posterior.mean),
                interval=(shown_round(low), shown_round(high)),
            )
        )
    rows.sort(key=lambda one: one.sort_key)
    return rows


def report_learning(*, category: Category | None = None, policy: Policy | None = None) -> list[dict[str, Any]]:
    """``GET /api/v1/reports/learning/``: the rows of :func:`learning_rows` as the API shows them."""
    return [row.payload() for row in learning_rows(category=category, policy=policy)]
