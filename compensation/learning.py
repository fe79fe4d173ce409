"""What the ranking learns from recorded outcomes, and how sure it is (API.md v2, "Learning that can be trusted").

Plain Python, no database: the engine, the recording worker, the learning
report and ``python -m bench learning`` all use it.

- **Counters.** Per offer template and category: how often recorded sets
  showed it at a, b and c (``shown_at``), and how often it was chosen. Per
  category: how many outcomes were recorded and how many chose a, b and c
  (declines count in the first and choose none): the position shares.
- **Position correction** (clicks over expected clicks). Customers pick ``a``
  more often because it is read first, so an offer's choices are compared
  with the choices an average offer would get at the positions it stood at:
  ``expected = Σ_p shown_at[p] × share[p]``, with the category's current
  shares. The posterior is ``Beta(chosen + m, max(0.5, (expected + m) / p0 −
  chosen − m))`` with the v1 prior ``p0`` and ``m = 2`` expected choices, so
  its mean is ``p0 × (chosen + m) / (expected + m)`` while that is below 1.
  Without correction, ``expected`` is the count of showings times ``p0`` and
  the posterior is v1's, ``(chosen + 6·p0) / (offered + 6)``.
- **Exploration** (Thompson sampling). The ranking's propensity factor is a
  draw from that posterior, so a new or unlucky offer still gets shown now and
  then until its estimate is sure. The draw is seeded by the offer set's id
  and the offer template's id (uniforms from BLAKE2b, Cheng's beta
  algorithms), none of it Python's ``random``, which may change between
  versions: a stored set's ranking can always be derived again from the
  counters it was ranked with.
- **Credible interval.** The 90% interval of the posterior, from the
  regularized incomplete beta function (a continued fraction) and its
  inverse: no scientific library needed.
"""

from __future__ import annotations

import hashlib
import math
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

PRIOR_ACCEPTANCE = 1 / 3  # p0: one of three options is chosen when nothing is known
PRIOR_STRENGTH = 6.0  # v1: how many showings the prior is worth (= m / p0)
PRIOR_CHOICES = 2.0  # m: how many expected choices the prior is worth
POSITIONS = "abc"
INTERVAL_MASS = 0.90
EXPLORING_WIDTH = 0.35  # an interval wider than this: "new option: still exploring"

_MASK = (1 << 64) - 1


class OfferCounts(NamedTuple):
    """One offer template's counters in one category, summed over its shards."""

    shown_a: int = 0
    shown_b: int = 0
    shown_c: int = 0
    chosen: int = 0

    @property
    def shown(self) -> int:
        return self.shown_a + self.shown_b + self.shown_c


class PositionCounts(NamedTuple):
    """One category's recorded outcomes and how many chose a, b and c (summed over shards)."""

    outcomes: int = 0
    chosen_a: int = 0
    chosen_b: int = 0
    chosen_c: int = 0

    @property
    def shares(self) -> tuple[float, float, float]:
        """The fractions of recorded outcomes that chose a, b and c (0 while there are none)."""
        if not self.outcomes:
            return (0.0, 0.0, 0.0)
        n = self.outcomes
        return (self.chosen_a / n, self.chosen_b / n, self.chosen_c / n)


@dataclass(frozen=True, slots=True)
class LearningStats:
    """What the engine reads per request for the incident's category (``selectors.request_facts``)."""

    offers: Mapping[int, OfferCounts] = field(default_factory=dict)  # offer template id -> counters
    positions: PositionCounts = field(default_factory=PositionCounts)

    @classmethod
    def from_v1(cls, counts: Mapping[int, tuple[int, int]]) -> LearningStats:
        """v1's ``(offered, chosen)`` counts, every showing at ``a`` (tests and benchmarks)."""
        return cls(offers={key: OfferCounts(offered, 0, 0, chosen) for key, (offered, chosen) in counts.items()})


@dataclass(frozen=True, slots=True)
class LearningMode:
    """``RANKING_EXPLORATION`` and ``RANKING_POSITION_CORRECTION``; both off is v1 exactly."""

    exploration: bool = True
    correction: bool = True

    @classmethod
    def from_settings(cls, *, exploration: str, correction: str) -> LearningMode:
        return cls(exploration=exploration == "thompson", correction=correction == "on")


V1 = LearningMode(exploration=False, correction=False)


class Posterior(NamedTuple):
    alpha: float
    beta: float
    mean: float  # propensity_mean
    expected: float  # the choices an average offer would have had where this one stood


def expected_choices(counts: OfferCounts, shares: tuple[float, float, float]) -> float:
    """``Σ_p shown_at[p] × share[p]``: the choices an average offer gets at these positions."""
    return counts.shown_a * shares[0] + counts.shown_b * shares[1] + counts.shown_c * shares[2]


def mean(counts: OfferCounts, shares: tuple[float, float, float], *, correction: bool) -> float:
    """:func:`posterior`'s mean alone, with the same floats: the ranking's propensity without exploration."""
    if not correction:
        return (counts[3] + PRIOR_STRENGTH * PRIOR_ACCEPTANCE) / (counts[0] + counts[1] + counts[2] + PRIOR_STRENGTH)
    alpha, beta = shape(counts, shares, correction=True)
    return alpha / (alpha + beta)


def shape(counts: OfferCounts, shares: tuple[float, float, float], *, correction: bool) -> tuple[float, float]:
    """The posterior's ``(alpha, beta)``: ``Beta(chosen + m, max(0.5, (expected + m) / p0 − chosen − m))``, where
    ``expected`` is ``Σ_p shown_at[p] × share[p]`` with correction and ``shown × p0`` (v1's) without."""
    a, b, c, chosen = counts
    alpha = chosen + PRIOR_CHOICES
    if not correction:  # (shown/3 + m) × 3 − chosen − m, exactly
        return alpha, a + b + c - chosen + PRIOR_STRENGTH - PRIOR_CHOICES
    beta = (a * shares[0] + b * shares[1] + c * shares[2] + PRIOR_CHOICES) / PRIOR_ACCEPTANCE - alpha
    return alpha, (beta if beta > 0.5 else 0.5)


def posterior(counts: OfferCounts, shares: tuple[float, float, float], *, correction: bool) -> Posterior:
    """The Beta posterior of one offer's propensity in one category, its mean and the choices expected."""
    alpha, beta = shape(counts, shares, correction=correction)
    if not correction:
        return Posterior(alpha, beta, mean(counts, shares, correction=False), counts.shown * PRIOR_ACCEPTANCE)
    return Posterior(alpha, beta, alpha / (alpha + beta), expected_choices(counts, shares))


# --- Seeded draws ------------------------------------------------------------------------


def seed_of(offer_set_id: uuid.UUID | str | int) -> int:
    """A 64-bit seed from an offer set's id (a UUID, its text, or an integer)."""
    if isinstance(offer_set_id, int):
        return offer_set_id & _MASK
    value = offer_set_id if isinstance(offer_set_id, uuid.UUID) else uuid.UUID(str(offer_set_id))
    return (value.int ^ (value.int >> 64)) & _MASK


_BLOCK_KEY = struct.Struct("<QQI").pack  # seed, template id, block number
_BLOCK = struct.Struct("<8Q").unpack  # a block: eight 64-bit words
_TO_UNIT = 2.0**-64
_LOG4 = 1.3862944
_HUGE = 1.7976931348623157e308


def _block(seed: int, key: int, number: int) -> tuple[int, ...]:
    """Eight 64-bit words from BLAKE2b of (seed, template id, block number): the draw's uniforms, stable
    across Python versions and platforms, and independent for each template of each set."""
    return _BLOCK(hashlib.blake2b(_BLOCK_KEY(seed, key & _MASK, number), digest_size=64).digest())


def draw(seed: int, key: int, alpha: float, beta: float) -> float:
    """A Beta(alpha, beta) draw for one offer template (``key``) of one offer set (``seed``).

    Cheng's algorithms BB (both parameters above 1) and BC (otherwise) (R. C. H. Cheng, "Generating
    beta variates with nonintegral shape parameters", CACM 21, 1978), as R's ``rbeta`` has them, fed by
    :func:`_block`'s uniforms. Each template has uniforms of its own, so a draw does not depend on which
    other candidates the set had or the order they came in.
    """
    a, b = (alpha, beta) if alpha <= beta else (beta, alpha)
    total = a + b
    words, i, number = _block(seed, key, 0), 0, 0
    if a > 1.0:  # BB
        scale = math.sqrt((total - 2.0) / (2.0 * a * b - total))
        shift = a + 1.0 / scale
        while True:
            if i == 8:
                number += 1
                words, i = _block(seed, key, number), 0
            u1, u2 = (words[i] + 0.5) * _TO_UNIT, (words[i + 1] + 0.5) * _TO_UNIT
            i += 2
            v = scale * math.log(u1 / (1.0 - u1))
            w = a * math.exp(v) if v <= 709.0 else _HUGE
            z = u1 * u1 * u2
            r = shift * v - _LOG4
            s = a + r - w
            if s + 2.609438 >= 5.0 * z:
                break
            t = math.log(z)
            if s > t or r + total * math.log(total / (b + w)) >= t:
                break
        return b / (b + w) if alpha != a else w / (b + w)
    scale = 1.0 / a  # BC
    delta = 1.0 + b - a
    k1 = delta * (0.0138889 + 0.0416667 * a) / (b * scale - 0.777778)
    k2 = 0.25 + (0.5 + 0.25 / delta) * a
    while True:
        if i == 8:
            number += 1
            words, i = _block(seed, key, number), 0
        u1, u2 = (words[i] + 0.5) * _TO_UNIT, (words[i + 1] + 0.5) * _TO_UNIT
        i += 2
        if u1 < 0.5:
            y = u1 * u2
            z = u1 * y
            if 0.25 * u2 + z - y >= k1:
                continue
        else:
            z = u1 * u1 * u2
            if z <= 0.25:
                v = scale * math.log(u1 / (1.0 - u1))
                w = b * math.exp(v) if v <= 709.0 else _HUGE
                break
            if z >= k2:
                continue
        v = scale * math.log(u1 / (1.0 - u1))
        w = b * math.exp(v) if v <= 709.0 else _HUGE
        if total * (math.log(total / (a + w)) + v) - _LOG4 >= math.log(z):
            break
    return a / (a + w) if alpha == a else w / (a + w)


# --- The credible interval -----------------------------------------------------------------


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes' betacf)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 3e-16:
            break
    return h


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)``: P(X <= x) for X ~ Beta(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1.0 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """The ``q`` quantile of Beta(a, b): the x with ``I_x(a, b) = q`` (Newton's method kept inside a bracket)."""
    if q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    low, high = 0.0, 1.0
    x = a / (a + b)
    log_norm = _log_beta(a, b)
    for _ in range(200):
        error = beta_cdf(x, a, b) - q
        if abs(error) < 1e-13:
            return x
        if error > 0:
            high = x
        else:
            low = x
        density = math.exp((a - 1.0) * math.log(x) + (b - 1.0) * math.log1p(-x) - log_norm) if 0 < x < 1 else 0.0
        step = x - error / density if density > 0 else -1.0
        x = step if low < step < high else (low + high) / 2
        if high - low < 1e-15:
            break
    return x


def interval(alpha: float, beta: float, mass: float = INTERVAL_MASS) -> tuple[float, float]:
    """The central credible interval holding ``mass`` of Beta(alpha, beta)."""
    tail = (1.0 - mass) / 2
    return beta_quantile(tail, alpha, beta), beta_quantile(1.0 - tail, alpha, beta)


def still_exploring(alpha: float, beta: float) -> bool:
    """Whether the 90% interval is wider than ``EXPLORING_WIDTH``.

    Decided from the standard deviation (the interval is about 3.29 of them wide)
    unless that lands near the threshold; only then are the quantiles computed.
    """
    total = alpha + beta
    approximate = 3.29 * math.sqrt(alpha * beta / (total * total * (total + 1.0)))
    if approximate > 1.3 * EXPLORING_WIDTH:
        return True
    if approximate < 0.7 * EXPLORING_WIDTH:
        return False
    low, high = interval(alpha, beta)
    return high - low > EXPLORING_WIDTH


# --- Recording ----------------------------------------------------------------------------


@dataclass
class StatisticsDelta:
    """What recorded outcomes add to the counters: per (category, template) and per category."""

    offers: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # -> [shown_a, shown_b, shown_c, chosen]
    positions: dict[int, list[int]] = field(
        default_factory=dict
    )  # category -> [outcomes, chosen_a, chosen_b, chosen_c]

    def add(self, *, category_id: int, shown: list[tuple[int | None, int]], chosen_rank: int | None) -> None:
        """One recorded outcome: the options its set showed as ``(template id, rank)``, and the rank chosen
        (None: declined). Templates deleted since (None) are not counted; the choice still is, by position."""
        position = self.positions.setdefault(category_id, [0, 0, 0, 0])
        position[0] += 1
        if chosen_rank is not None and chosen_rank < len(POSITIONS):
            position[1 + chosen_rank] += 1
        for template_id, rank in shown:
            if template_id is None or rank >= len(POSITIONS):
                continue
            row = self.offers.setdefault((category_id, template_id), [0, 0, 0, 0])
            row[rank] += 1
            row[3] += rank == chosen_rank

    def __bool__(self) -> bool:
        return bool(self.positions)
