"""A policy's history in words: the change lines between two versions, and two versions side by side.

Both read snapshots in the pack format (``serialization.policy_to_pack``), the
form every :class:`~policies.models.PolicyVersion` keeps, so any two versions
compare, including those saved before these words existed. Offers and remedies
are named by position and kind ("Offer 2 (percent discount)"), as they keep their
identity by position. Money shows as stored (``30.00``), yes/no for booleans,
``none`` for an empty value, lists joined with ", ".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policies.choices import OFFER_KIND_WORDS
from policies.conditions import CONDITION_NAMES

Snapshot = dict[str, Any]

NONE = "none"
EXCERPT_CHARS = 60
EXCERPT_CONTEXT = 20  # characters before a text's first difference that its excerpt keeps


# --- Values in words -------------------------------------------------------------------


def _show(value: Any) -> str:
    if value is None or value == "" or value == []:
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _quoted(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) and value else _show(value)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _excerpt(text: str, start: int = 0) -> str:
    """The text on one line, quoted, from the word around ``start`` on; past EXCERPT_CHARS cut at a word.

    Cut ends (and a start past the beginning) show as "…".
    """
    flat = _flat(text)
    lead = ""
    if start > 0:
        space = flat.rfind(" ", 0, start)
        if space > 0:
            flat, lead = flat[space + 1 :], "…"
    if len(flat) <= EXCERPT_CHARS:
        return f'"{lead}{flat}"'
    cut = flat[: EXCERPT_CHARS - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return f'"{lead}{cut.rstrip(" ,.;:")}…"'


def _days(value: Any) -> str:
    if value is None:
        return NONE
    return f"{value} day" if value == 1 else f"{value} days"


def _words(value: str) -> str:
    return value.replace("_", " ")


def kind_words(kind: Any) -> str:
    """An offer or remedy kind in a few words ("fixed credit")."""
    return OFFER_KIND_WORDS.get(kind) or (_words(kind) if isinstance(kind, str) and kind else "unknown kind")


def _long_text_line(label: str, old: Any, new: Any) -> str:
    """A long text changed: say how, with an excerpt of what it says now, never the whole text."""
    if not old:
        return f"{label} added: {_excerpt(new)}"
    if not new:
        return f"{label} removed"
    # Start the excerpt a little before the first difference, so an edit at the end shows.
    old_flat, new_flat = _flat(old), _flat(new)
    pairs = enumerate(zip(old_flat, new_flat, strict=False))
    same = next((i for i, (a, b) in pairs if a != b), min(len(old_flat), len(new_flat)))
    return f"{label} changed to {_excerpt(new, max(0, same - EXCERPT_CONTEXT))}"


# --- The fields, grouped as the admin's change form is ---------------------------------

BASICS: tuple[tuple[str, str], ...] = (
    ("slug", "Slug"),
    ("name", "Name"),
    ("description", "Description"),
    ("active", "Active"),
    ("priority", "Priority"),
    ("placement", "Placement"),
    ("valid_from", "Valid from"),
    ("valid_until", "Valid until"),
)
QUOTED = {"name"}
LONG_TEXTS = {"description", "message"}

GENEROSITY: tuple[tuple[str, str], ...] = (
    ("per_severity", "extra per severity step"),
    ("per_repeat", "extra per repeat"),
    ("per_1000_lifetime_value", "extra per 1,000 lifetime value"),
    ("max_multiplier", "most generous multiplier"),
)
BUDGET: tuple[tuple[str, str], ...] = (
    ("monthly_cap", "monthly budget"),
    ("per_customer_cap_30d", "per-customer cap (30 days)"),
)
OFFER_FIELDS: tuple[tuple[str, str], ...] = (
    ("kind", "kind"),
    ("title", "title"),
    ("message", "message"),
    ("value", "value"),
    ("max_amount", "maximum amount"),
    ("cost", "cost to us"),
    ("expires_in_days", "expiry"),
    ("requires_approval", "requires approval"),
)


@dataclass(frozen=True, slots=True)
class _ConditionWords:
    keys: tuple[str, ...]  # the keys under ``conditions`` it reads
    label: str  # what it tests, in words: "Condition added: <label> <value>"
    value: Callable[..., str | None]  # the value in words, None when the condition is not set
    any_label: str = "any"  # the value shown side by side when not set


def _listed(transform: Callable[[str], str] = str) -> Callable[[Any], str | None]:
    return lambda values: ", ".join(transform(v) for v in values) if values else None


def _scalar(value: Any) -> str | None:
    return None if value is None else _show(value)


def _severity(low: Any, high: Any) -> str | None:
    if low is None and high is None:
        return None
    if high is None:
        return f"at least {low}"
    if low is None:
        return f"at most {high}"
    return str(low) if low == high else f"{low}–{high}"


CONDITION_WORDS: tuple[_ConditionWords, ...] = (
    _ConditionWords(("categories",), "categories", _listed()),
    _ConditionWords(("severity_min", "severity_max"), "severity", _severity),
    _ConditionWords(("faults",), "fault", _listed(_words)),
    _ConditionWords(("tiers",), "tiers", _listed()),
    _ConditionWords(("correctable",), "correctable", _scalar, "either"),
    _ConditionWords(("min_repeat_count",), "incidents in the repeat window at least", _scalar),
    _ConditionWords(("min_same_category_repeat_count",), "same-category incidents at least", _scalar),
    _ConditionWords(("min_lifetime_value",), "lifetime value at least", _scalar),
    _ConditionWords(("min_order_value",), "order value at least", _scalar),
)


def _condition_words(conditions: Snapshot) -> tuple[_ConditionWords, ...]:
    """The conditions above, then any the snapshot holds that they do not name (a later kind), by name."""
    named = {key for words in CONDITION_WORDS for key in words.keys}
    others = sorted((set(conditions) | set(CONDITION_NAMES)) - named)
    return CONDITION_WORDS + tuple(
        _ConditionWords((key,), _words(key), lambda v: None if v in (None, []) else _show(v)) for key in others
    )


# --- Change lines ------------------------------------------------------------------------


def snapshot_changes(before: Snapshot | None, after: Snapshot) -> list[str]:
    """What changed from ``before`` to ``after``, one line in words per change, in the change form's order.

    ``before`` None is a new policy: ``["created"]``. Examples: ``Priority: 50 → 60``, ``Condition added:
    tiers gold, platinum``, ``Budget: monthly budget set to 500.00``, ``Offer 1 (fixed credit): value
    30.00 → 35.00``, ``Remedy 1 (refund) removed: "Your {money} back"``.
    """
    if before is None:
        return ["created"]
    lines: list[str] = []
    for key, label in BASICS:
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key in LONG_TEXTS:
            lines.append(_long_text_line(label, old, new))
        elif key in QUOTED:
            lines.append(f"{label}: {_quoted(old)} → {_quoted(new)}")
        else:
            lines.append(f"{label}: {_show(old)} → {_show(new)}")

    old_conditions, new_conditions = before.get("conditions") or {}, after.get("conditions") or {}
    for words in _condition_words({**old_conditions, **new_conditions}):
        old = words.value(*(old_conditions.get(key) for key in words.keys))
        new = words.value(*(new_conditions.get(key) for key in words.keys))
        if old == new:
            continue
        if old is None:
            lines.append(f"Condition added: {words.label} {new}")
        elif new is None:
            lines.append(f"Condition removed: {words.label} {old}")
        else:
            lines.append(f"Condition changed: {words.label} {old} → {new}")

    if before.get("escalate") != after.get("escalate"):
        lines.append(f"Escalate automatically: {_show(before.get('escalate'))} → {_show(after.get('escalate'))}")

    old_generosity, new_generosity = before.get("generosity") or {}, after.get("generosity") or {}
    for key, label in GENEROSITY:
        old, new = old_generosity.get(key), new_generosity.get(key)
        if old != new:
            lines.append(f"Generosity: {label} {_show(old)} → {_show(new)}")

    old_budget, new_budget = before.get("budget") or {}, after.get("budget") or {}
    for key, label in BUDGET:
        old, new = old_budget.get(key), new_budget.get(key)
        if old == new:
            continue
        if old is None:
            lines.append(f"Budget: {label} set to {new}")
        elif new is None:
            lines.append(f"Budget: {label} removed (was {old})")
        else:
            lines.append(f"Budget: {label} {old} → {new}")

    lines += _rows_changes("Remedy", before.get("remedy") or [], after.get("remedy") or [])
    lines += _rows_changes("Offer", before.get("offers") or [], after.get("offers") or [])

    known = {key for key, _ in BASICS} | {"conditions", "escalate", "generosity", "budget", "remedy", "offers"}
    for key in sorted((before.keys() | after.keys()) - known):  # a field these words do not know yet
        if before.get(key) != after.get(key):
            lines.append(f"{_words(key).capitalize()}: {_show(before.get(key))} → {_show(after.get(key))}")
    return lines


def _rows_changes(what: str, old_rows: list[Snapshot], new_rows: list[Snapshot]) -> list[str]:
    """Offers (or remedies) compared by position: each added, removed, or changed field by field."""
    lines: list[str] = []
    for index in range(max(len(old_rows), len(new_rows))):
        position = f"{what} {index + 1}"
        if index >= len(old_rows):
            new = new_rows[index]
            lines.append(f"{position} ({kind_words(new.get('kind'))}) added: {_row_summary(new)}")
            continue
        old = old_rows[index]
        if index >= len(new_rows):
            lines.append(f"{position} ({kind_words(old.get('kind'))}) removed: {_quoted(old.get('title'))}")
            continue
        new = new_rows[index]
        if old.get("kind") != new.get("kind"):
            lines.append(f"{position}: kind {kind_words(old.get('kind'))} → {kind_words(new.get('kind'))}")
        name = f"{position} ({kind_words(new.get('kind'))})"
        for key, label in OFFER_FIELDS[1:]:
            before, after = old.get(key), new.get(key)
            if before == after:
                continue
            if key in LONG_TEXTS:
                lines.append(f"{name}: {_long_text_line(label, before, after)}")
            elif key == "title":
                lines.append(f"{name}: {label} {_quoted(before)} → {_quoted(after)}")
            elif key == "expires_in_days":
                lines.append(f"{name}: {label} {_days(before)} → {_days(after)}")
            else:
                lines.append(f"{name}: {label} {_show(before)} → {_show(after)}")
    return lines


def _row_summary(row: Snapshot) -> str:
    """A new offer or remedy in one line: its title and the values it sets."""
    parts = [_quoted(row.get("title"))]
    for key, label in (("value", "value"), ("max_amount", "maximum amount"), ("cost", "cost to us")):
        if row.get(key) is not None:
            parts.append(f"{label} {row[key]}")
    if row.get("expires_in_days") is not None:
        parts.append(f"expires after {_days(row['expires_in_days'])}")
    if row.get("requires_approval"):
        parts.append("requires approval")
    return ", ".join(parts)


# --- Side by side --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompareRow:
    label: str
    left: str
    right: str
    long: bool = False  # a text shown whole, wrapped

    @property
    def differs(self) -> bool:
        return self.left != self.right


@dataclass(frozen=True, slots=True)
class CompareGroup:
    title: str
    rows: tuple[CompareRow, ...]

    @property
    def differs(self) -> bool:
        return any(row.differs for row in self.rows)


ABSENT = "—"  # an offer or remedy one side does not have


def snapshots_compare(left: Snapshot, right: Snapshot) -> list[CompareGroup]:
    """Two versions side by side, field by field, grouped as the admin's change form."""
    basics = []
    for key, label in BASICS:
        long = key in LONG_TEXTS
        basics.append(CompareRow(label, _cell(left.get(key)), _cell(right.get(key)), long=long))

    left_conditions, right_conditions = left.get("conditions") or {}, right.get("conditions") or {}
    conditions = []
    for words in _condition_words({**left_conditions, **right_conditions}):
        values = [words.value(*(side.get(key) for key in words.keys)) for side in (left_conditions, right_conditions)]
        conditions.append(CompareRow(words.label.capitalize(), *(v or words.any_label for v in values)))

    escalation = [CompareRow("Escalate automatically", _show(left.get("escalate")), _show(right.get("escalate")))]
    generosity = [
        CompareRow(
            label.capitalize(),
            _show((left.get("generosity") or {}).get(key)),
            _show((right.get("generosity") or {}).get(key)),
        )
        for key, label in GENEROSITY
    ]
    budget = [
        CompareRow(
            label.capitalize(),
            _cap((left.get("budget") or {}).get(key)),
            _cap((right.get("budget") or {}).get(key)),
        )
        for key, label in BUDGET
    ]
    return [
        CompareGroup("Basics", tuple(basics)),
        CompareGroup("Conditions", tuple(conditions)),
        CompareGroup("Escalation", tuple(escalation)),
        CompareGroup("Generosity", tuple(generosity)),
        CompareGroup("Budget", tuple(budget)),
        CompareGroup("Remedy", _rows_side_by_side("Remedy", left.get("remedy") or [], right.get("remedy") or [])),
        CompareGroup("Offers", _rows_side_by_side("Offer", left.get("offers") or [], right.get("offers") or [])),
    ]


def _cell(value: Any) -> str:
    return value if isinstance(value, str) and value else _show(value)


def _cap(value: Any) -> str:
    return "unlimited" if value is None else str(value)


def _offer_cell(row: Snapshot | None, key: str) -> str:
    if row is None:
        return ABSENT
    if key == "kind":
        return kind_words(row.get("kind"))
    if key == "expires_in_days":
        return _days(row.get(key))
    return _cell(row.get(key))


def _rows_side_by_side(what: str, left: list[Snapshot], right: list[Snapshot]) -> tuple[CompareRow, ...]:
    if not left and not right:
        return (CompareRow(what, NONE, NONE),)
    rows = []
    for index in range(max(len(left), len(right))):
        mine = left[index] if index < len(left) else None
        theirs = right[index] if index < len(right) else None
        for key, label in OFFER_FIELDS:
            rows.append(
                CompareRow(
                    f"{what} {index + 1}: {label}",
                    _offer_cell(mine, key),
                    _offer_cell(theirs, key),
                    long=key in LONG_TEXTS,
                )
            )
    return tuple(rows)
