"""A policy's conditions on the customer and the incident, declared once.

Each :class:`Condition` names the ``Policy`` field that holds it (also its key
under ``conditions`` in a pack), how a pack writes it, which fact of the
request it tests, the test, and the words for a failure. The pack reader and
writer, the compiled index and the engine's "why not" all loop over
:data:`CONDITIONS`; the model declares the fields (with their help texts) and
the admin lays them out. The incident's category and the validity dates are
conditions too, but of another shape (a relation, the policy's own dates): the
index and the engine handle them first, by themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from policies.money import money as to_money

Kind = Literal["integer", "decimal", "choices", "boolean"]


@dataclass(frozen=True, slots=True)
class Condition:
    name: str  # the Policy field and the pack key under `conditions`
    kind: Kind  # how a pack writes the value
    on_customer: bool  # the fact is the customer's (CustomerFacts), else the incident's (IncidentFacts)
    attribute: str  # the fact's attribute
    holds: Callable[[Any, Any], bool]  # (the policy's value, the fact) -> whether the incident passes
    failure: Callable[[Any, Any], str]  # (the policy's value, the fact) -> why not, in words

    def is_set(self, value: Any) -> bool:
        """Whether the policy sets this condition: empty (None or no choices) accepts anything."""
        return bool(value) if self.kind == "choices" else value is not None

    def compiled(self, value: Any) -> Any:
        return frozenset(value) if self.kind == "choices" else value


def _minimum(name: str, what: str, *, money: bool = False) -> Callable[[Any, Any], str]:
    def failure(value: Any, fact: Any) -> str:
        shown = to_money(fact) if money else fact
        return f"{what} {shown} is below {name} {value}"

    return failure


def _one_of(what: str) -> Callable[[Any, Any], str]:
    return lambda value, fact: f"{what} {fact} is not one of {', '.join(sorted(value))}"


def _at_least(value: Any, fact: Any) -> bool:
    return fact >= value


# In the order the engine tries them: the first that fails is the reason given.
CONDITIONS: tuple[Condition, ...] = (
    Condition(
        "severity_min",
        "integer",
        False,
        "severity",
        _at_least,
        lambda value, fact: f"severity {fact} is below severity_min {value}",
    ),
    Condition(
        "severity_max",
        "integer",
        False,
        "severity",
        lambda value, fact: fact <= value,
        lambda value, fact: f"severity {fact} is above severity_max {value}",
    ),
    Condition("faults", "choices", False, "fault", lambda value, fact: fact in value, _one_of("fault")),
    Condition("tiers", "choices", True, "tier", lambda value, fact: fact in value, _one_of("tier")),
    Condition(
        "correctable",
        "boolean",
        False,
        "correctable",
        lambda value, fact: fact == value,
        lambda value, fact: "the incident is correctable" if fact else "the incident is not correctable",
    ),
    Condition(
        "min_repeat_count",
        "integer",
        False,
        "repeat_count",
        _at_least,
        _minimum("min_repeat_count", "repeat_count"),
    ),
    Condition(
        "min_same_category_repeat_count",
        "integer",
        False,
        "same_category_repeat_count",
        _at_least,
        _minimum("min_same_category_repeat_count", "same_category_repeat_count"),
    ),
    Condition(
        "min_lifetime_value",
        "decimal",
        True,
        "lifetime_value",
        _at_least,
        _minimum("min_lifetime_value", "lifetime value", money=True),
    ),
    Condition(
        "min_order_value",
        "decimal",
        False,
        "order_value",
        _at_least,
        _minimum("min_order_value", "order value", money=True),
    ),
)

CONDITION_NAMES: tuple[str, ...] = tuple(c.name for c in CONDITIONS)

CompiledConditions = tuple[tuple[Condition, Any], ...]


def conditions_compile(values: Any) -> CompiledConditions:
    """The conditions a policy sets, with their values, in the engine's order.

    ``values`` is a ``Policy`` (or anything with its condition attributes) or a
    mapping of condition names; conditions it leaves empty are left out, so
    the engine tests only what the policy asks for.
    """
    read: Callable[[str], Any] = values.get if isinstance(values, dict) else lambda name: getattr(values, name, None)
    compiled = []
    for condition in CONDITIONS:
        value = read(condition.name)
        if condition.is_set(value):
            compiled.append((condition, condition.compiled(value)))
    return tuple(compiled)


def condition_to_pack(condition: Condition, value: Any) -> Any:
    """The value as a pack writes it: money as a decimal string, choices as a list."""
    if condition.kind == "choices":
        return list(value or [])
    if condition.kind == "decimal" and value is not None:
        return to_money(Decimal(value))
    return value
