"""Policy packs: YAML or JSON documents of categories, perks and policies.

Import is all-or-nothing. The whole document is checked first (shape and
types here, every domain rule through the models' ``full_clean``, the same
rules the admin applies); any problem is reported with its field path, such as
``policies[2].offers[0].value: must be between 0 and 100 for
percent_discount``, and nothing is written. Objects match by slug; a policy
whose content did not change keeps its version.

``full_clean`` runs without ``validate_constraints``: every CheckConstraint
mirrors a rule in ``policies.validation`` that ``clean()`` already applies, and
Django checks constraints with one query each.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from policies.choices import Placement
from policies.conditions import CONDITION_NAMES, CONDITIONS, Condition
from policies.models import Category, OfferFields, OfferTemplate, Perk, Policy, PolicyVersion, RemedyTemplate
from policies.serialization import PackDict, policy_to_pack
from policies.services import policy_set_active, policy_version_record

_INVALID_CHOICE = re.compile(r"Value .* is not a valid choice\.")
_GENERIC_REQUIRED = {"This field cannot be null.", "This field cannot be blank.", "This field is required."}


class PackError(Exception):
    """The pack cannot be imported; ``errors`` lists ``path: message`` lines."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass
class ImportResult:
    created: dict[str, list[str]] = field(default_factory=lambda: {"categories": [], "perks": [], "policies": []})
    updated: dict[str, list[str]] = field(default_factory=lambda: {"categories": [], "perks": [], "policies": []})
    unchanged: dict[str, list[str]] = field(default_factory=lambda: {"categories": [], "perks": [], "policies": []})
    deactivated: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = []
        for kind in ("categories", "perks", "policies"):
            lines.append(
                f"{kind}: {len(self.created[kind])} created, {len(self.updated[kind])} updated, "
                f"{len(self.unchanged[kind])} unchanged"
            )
        if self.deactivated:
            lines.append(f"policies deactivated (not in pack): {', '.join(self.deactivated)}")
        return "\n".join(lines)


# --- Reading -----------------------------------------------------------------------


def pack_load(path: str | Path, text: str | None = None) -> Any:
    """Parse a pack file (``.json`` as JSON, anything else as YAML)."""
    name = str(path)
    try:
        if text is None:
            text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PackError([f"{name}: cannot read the file ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError:
        raise PackError([f"{name}: is not UTF-8 text"]) from None
    try:
        if name.lower().endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise PackError([f"{name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PackError([f"{name}: invalid YAML{where}: {problem}"]) from None
    except ValueError as exc:  # a YAML value out of range, such as the date 2026-13-01
        raise PackError([f"{name}: invalid YAML: a value cannot be read ({exc})"]) from None


# --- Field readers: each returns a value or records an error at its path -------------


class _Reader:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.failed_paths: set[str] = set()  # a field that could not be read gets no second, derived error

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")
        self.failed_paths.add(path)

    def mapping(self, data: Any, path: str, allowed: set[str], required: set[str] = frozenset()) -> dict | None:
        if not isinstance(data, dict):
            self.error(path, f"must be a mapping with keys {', '.join(sorted(allowed))}")
            return None
        for key in data:
            if key not in allowed:
                self.error(f"{path}.{key}", f"unknown field; allowed: {', '.join(sorted(allowed))}")
        for key in sorted(required):
            if data.get(key) in (None, ""):
                self.error(f"{path}.{key}", "is required")
        return data

    def text(self, data: dict, key: str, path: str, *, default: str = "") -> str:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.error(f"{path}.{key}", f"must be text, got {type(value).__name__}")
            return default
        if "\x00" in value:
            self.error(f"{path}.{key}", "must not contain NUL characters")
            return default
        return value

    def boolean(self, data: dict, key: str, path: str, *, default: bool | None) -> bool | None:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(f"{path}.{key}", f"must be true or false, got {value!r}")
            return default
        return value

    def integer(self, data: dict, key: str, path: str) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
                return int(value)
            self.error(f"{path}.{key}", f"must be a whole number, got {value!r}")
            return None
        return value

    def decimal(self, data: dict, key: str, path: str) -> Decimal | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.error(f"{path}.{key}", f'must be a decimal string such as "12.50", got {value!r}')
            return None
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            self.error(f"{path}.{key}", f'must be a decimal string such as "12.50", got {value!r}')
            return None
        if not number.is_finite():
            self.error(f"{path}.{key}", f"must be a finite number, got {value!r}")
            return None
        return number

    def day(self, data: dict, key: str, path: str) -> date | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.error(f"{path}.{key}", f"must be a date as YYYY-MM-DD, got {value!r}")
        return None

    def strings(self, data: dict, key: str, path: str) -> list[str]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) and "\x00" not in item for item in value):
            self.error(f"{path}.{key}", f"must be a list of text values, got {value!r}")
            return []
        return list(value)

    def condition(self, data: dict, condition: Condition, path: str) -> Any:
        """A policy condition's value, read as its kind is written (policies/conditions.py)."""
        if condition.kind == "choices":
            return self.strings(data, condition.name, path)
        if condition.kind == "boolean":
            return self.boolean(data, condition.name, path, default=None)
        return getattr(self, condition.kind)(data, condition.name, path)

    def entries(self, document: dict, key: str) -> list:
        value = document.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(key, "must be a list")
            return []
        return value

    def model_errors(self, exc: ValidationError, path: str, paths: dict[str, str]) -> None:
        unreadable = set(self.failed_paths)
        for name, messages in exc.message_dict.items():
            where = path if name == "__all__" else f"{path}.{paths.get(name, name)}"
            if where in unreadable:
                continue
            if len(messages) > 1:  # a rule's own message says more than Django's generic "not a valid choice"
                messages = [m for m in messages if not _INVALID_CHOICE.fullmatch(m)]
            for message in messages:
                self.error(where, "is required" if message in _GENERIC_REQUIRED else _lower_first(message))


def _lower_first(message: str) -> str:
    return message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message


CATEGORY_KEYS = {"slug", "name", "description", "active"}
PERK_KEYS = {"slug", "name", "description", "tags", "cost", "active"}
POLICY_KEYS = {
    "slug",
    "name",
    "description",
    "active",
    "priority",
    "placement",
    "valid_from",
    "valid_until",
    "conditions",
    "escalate",
    "generosity",
    "budget",
    "remedy",
    "offers",
}
CONDITION_KEYS = {"categories", *CONDITION_NAMES}
BUDGET_KEYS = {"monthly_cap", "per_customer_cap_30d"}
GENEROSITY_KEYS = {"per_severity", "per_repeat", "per_1000_lifetime_value", "max_multiplier"}
OFFER_KEYS = {"kind", "title", "message", "value", "max_amount", "cost", "expires_in_days", "requires_approval"}

# Where a model field lives in the pack, for error paths.
POLICY_FIELD_PATHS = {
    **{key: f"conditions.{key}" for key in CONDITION_KEYS},
    **{key: f"budget.{key}" for key in BUDGET_KEYS},
    **{f"generosity_{key}": f"generosity.{key}" for key in GENEROSITY_KEYS},
}


@dataclass
class _PolicyPlan:
    instance: Policy
    categories: list[str]
    offers: list[OfferTemplate]
    remedies: list[RemedyTemplate]
    snapshot: PackDict
    existing: bool


@dataclass
class _Plan:
    categories: list[tuple[Category, bool]] = field(default_factory=list)  # (instance, changed)
    perks: list[tuple[Perk, bool]] = field(default_factory=list)
    policies: list[_PolicyPlan] = field(default_factory=list)


def _check_duplicates(reader: _Reader, entries: list, key: str) -> None:
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        slug = entry.get("slug") if isinstance(entry, dict) else None
        if isinstance(slug, str):
            if slug in seen:
                reader.error(f"{key}[{index}].slug", f"duplicate of {key}[{seen[slug]}].slug ({slug!r})")
            seen.setdefault(slug, index)


def _plan_category(reader: _Reader, entry: Any, path: str, existing: dict[str, Category]) -> tuple[Category, bool]:
    data = reader.mapping(entry, path, CATEGORY_KEYS, {"slug", "name"}) or {}
    slug = reader.text(data, "slug", path)
    instance = existing.get(slug) or Category(slug=slug)
    before = (instance.name, instance.description, instance.active)
    instance.name = reader.text(data, "name", path, default=instance.name)
    instance.description = reader.text(data, "description", path, default=instance.description)
    instance.active = reader.boolean(data, "active", path, default=instance.active if instance.pk else True)
    try:
        instance.full_clean(validate_constraints=False)
    except ValidationError as exc:
        reader.model_errors(exc, path, {})
    return instance, instance.pk is None or before != (instance.name, instance.description, instance.active)


def _plan_perk(reader: _Reader, entry: Any, path: str, existing: dict[str, Perk]) -> tuple[Perk, bool]:
    data = reader.mapping(entry, path, PERK_KEYS, {"slug", "name"}) or {}
    slug = reader.text(data, "slug", path)
    instance = existing.get(slug) or Perk(slug=slug)
    fields = ("name", "description", "tags", "cost", "active")
    before = tuple(getattr(instance, f) for f in fields)
    instance.name = reader.text(data, "name", path, default=instance.name)
    instance.description = reader.text(data, "description", path, default=instance.description)
    if "tags" in data:
        instance.tags = reader.strings(data, "tags", path)
    if "cost" in data or instance.pk is None:
        instance.cost = reader.decimal(data, "cost", path)
    instance.active = reader.boolean(data, "active", path, default=instance.active if instance.pk else True)
    try:
        instance.full_clean(validate_constraints=False)
    except ValidationError as exc:
        reader.model_errors(exc, path, {})
    return instance, instance.pk is None or before != tuple(getattr(instance, f) for f in fields)


def _plan_offer(reader: _Reader, entry: Any, path: str, index: int, model: type[OfferFields] = OfferTemplate) -> Any:
    """An offer (or, with ``model=RemedyTemplate``, a remedy) as the pack writes it, validated by its model."""
    data = reader.mapping(entry, path, OFFER_KEYS, {"kind", "title"}) or {}
    offer = model(
        kind=reader.text(data, "kind", path),
        title=reader.text(data, "title", path),
        message=reader.text(data, "message", path),
        value=reader.decimal(data, "value", path),
        max_amount=reader.decimal(data, "max_amount", path),
        cost=reader.decimal(data, "cost", path),
        expires_in_days=reader.integer(data, "expires_in_days", path),
        requires_approval=bool(reader.boolean(data, "requires_approval", path, default=False)),
        order=index,
    )
    try:
        offer.full_clean(exclude=["policy"], validate_constraints=False)
    except ValidationError as exc:
        reader.model_errors(exc, path, {})
    return offer


def _plan_policy(
    reader: _Reader, entry: Any, path: str, existing: dict[str, Policy], category_slugs: set[str]
) -> _PolicyPlan:
    data = reader.mapping(entry, path, POLICY_KEYS, {"slug", "name"}) or {}
    conditions = reader.mapping(data.get("conditions") or {}, f"{path}.conditions", CONDITION_KEYS) or {}
    budget = reader.mapping(data.get("budget") or {}, f"{path}.budget", BUDGET_KEYS) or {}
    generosity = reader.mapping(data.get("generosity") or {}, f"{path}.generosity", GENEROSITY_KEYS) or {}
    cpath, bpath, gpath = f"{path}.conditions", f"{path}.budget", f"{path}.generosity"

    slug = reader.text(data, "slug", path)
    current = existing.get(slug)
    policy = current or Policy(slug=slug)
    policy.slug = slug  # a restore matches the policy itself, whose slug may have changed since
    policy.name = reader.text(data, "name", path)
    policy.description = reader.text(data, "description", path)
    policy.active = bool(reader.boolean(data, "active", path, default=True))
    priority = reader.integer(data, "priority", path)
    policy.priority = 50 if priority is None else priority
    policy.placement = reader.text(data, "placement", path, default=Placement.RANKED)
    policy.valid_from = reader.day(data, "valid_from", path)
    policy.valid_until = reader.day(data, "valid_until", path)
    for condition in CONDITIONS:
        setattr(policy, condition.name, reader.condition(conditions, condition, cpath))
    policy.escalate = bool(reader.boolean(data, "escalate", path, default=False))
    for key, default in (
        ("per_severity", Decimal("0")),
        ("per_repeat", Decimal("0")),
        ("per_1000_lifetime_value", Decimal("0")),
        ("max_multiplier", Decimal("2")),
    ):
        number = reader.decimal(generosity, key, gpath)
        setattr(policy, f"generosity_{key}", default if number is None else number)
    policy.monthly_cap = reader.decimal(budget, "monthly_cap", bpath)
    policy.per_customer_cap_30d = reader.decimal(budget, "per_customer_cap_30d", bpath)
    try:
        policy.full_clean(validate_constraints=False)
    except ValidationError as exc:
        reader.model_errors(exc, path, POLICY_FIELD_PATHS)

    categories = reader.strings(conditions, "categories", cpath)
    unknown = [slug for slug in categories if slug not in category_slugs]
    if unknown:
        reader.error(
            f"{cpath}.categories",
            f"unknown category {', '.join(map(repr, unknown))}; define it under categories or use one of: "
            f"{', '.join(sorted(category_slugs)) or '(none yet)'}",
        )

    def planned(key: str, model: type[OfferFields], what: str) -> list:
        raw = data.get(key) or []
        if not isinstance(raw, list):
            reader.error(f"{path}.{key}", f"must be a list of {what}")
            raw = []
        return [_plan_offer(reader, item, f"{path}.{key}[{i}]", i, model) for i, item in enumerate(raw)]

    offers = planned("offers", OfferTemplate, "offers")
    remedies = planned("remedy", RemedyTemplate, "remedy offers (kind, title, message, value, ...)")
    snapshot = policy_to_pack(policy, categories=categories, offers=offers, remedies=remedies)
    return _PolicyPlan(
        instance=policy,
        categories=categories,
        offers=offers,
        remedies=remedies,
        snapshot=snapshot,
        existing=bool(current),
    )


def pack_plan(document: Any) -> _Plan:
    """What importing ``document`` would write, validated; raises :class:`PackError`. Writes nothing."""
    reader = _Reader()
    if document is None:
        raise PackError(["pack: is empty; expected categories, perks and policies"])
    top = reader.mapping(document, "pack", {"categories", "perks", "policies"})
    if top is None:
        raise PackError(reader.errors)
    categories = reader.entries(top, "categories")
    perks = reader.entries(top, "perks")
    policies = reader.entries(top, "policies")
    for key, entries in (("categories", categories), ("perks", perks), ("policies", policies)):
        _check_duplicates(reader, entries, key)

    slugs = lambda entries: [e["slug"] for e in entries if isinstance(e, dict) and isinstance(e.get("slug"), str)]  # noqa: E731
    existing_categories = Category.objects.in_bulk(slugs(categories), field_name="slug")
    existing_perks = Perk.objects.in_bulk(slugs(perks), field_name="slug")
    existing_policies = Policy.objects.in_bulk(slugs(policies), field_name="slug")
    known_categories = set(Category.objects.values_list("slug", flat=True)) | set(slugs(categories))

    plan = _Plan()
    plan.categories = [
        _plan_category(reader, entry, f"categories[{i}]", existing_categories) for i, entry in enumerate(categories)
    ]
    plan.perks = [_plan_perk(reader, entry, f"perks[{i}]", existing_perks) for i, entry in enumerate(perks)]
    plan.policies = [
        _plan_policy(reader, entry, f"policies[{i}]", existing_policies, known_categories)
        for i, entry in enumerate(policies)
    ]
    if reader.errors:
        raise PackError(reader.errors)
    return plan


# --- Writing -------------------------------------------------------------------------


def pack_import(
    *, document: Any, replace: bool = False, actor: AbstractBaseUser | None = None, source: str = "pack"
) -> ImportResult:
    """Validate the whole pack, then write it in one transaction.

    Raises :class:`PackError` (nothing written) when any entry is invalid.
    """
    with transaction.atomic():
        plan = pack_plan(document)
        result = ImportResult()
        for kind, items in (("categories", plan.categories), ("perks", plan.perks)):
            for instance, changed in items:
                if not changed:
                    result.unchanged[kind].append(instance.slug)
                    continue
                (result.updated if instance.pk else result.created)[kind].append(instance.slug)
                instance.save()

        category_ids = dict(Category.objects.values_list("slug", "pk"))
        for item in plan.policies:
            _write_policy(item, category_ids, actor=actor, reason=f"imported from {source}", result=result)

        if replace:
            named = [item.instance.slug for item in plan.policies]
            stale = list(Policy.objects.filter(active=True).exclude(slug__in=named).order_by("slug"))
            policy_set_active(policies=stale, active=False, actor=actor, reason=f"not in {source} (--replace)")
            result.deactivated = [p.slug for p in stale]
    return result


def _write_policy(
    item: _PolicyPlan,
    category_ids: dict[str, int],
    *,
    actor: AbstractBaseUser | None,
    reason: str,
    result: ImportResult | None = None,
) -> PolicyVersion | None:
    """Write a planned policy with its categories, offers and remedies; its new version, or None if unchanged."""
    policy = item.instance
    if item.existing:
        current = Policy.objects.prefetch_related("categories", "offers", "remedies").get(pk=policy.pk)
        if policy_to_pack(current) == item.snapshot and current.version > 0:
            if result is not None:
                result.unchanged["policies"].append(policy.slug)
            return None
    if result is not None:
        (result.updated if item.existing else result.created)["policies"].append(policy.slug)
    policy.save()
    policy.categories.set([category_ids[slug] for slug in sorted(set(item.categories))])

    _write_rows(policy, item.offers, policy.offers.all(), OfferTemplate)
    _write_rows(policy, item.remedies, policy.remedies.all(), RemedyTemplate)
    return policy_version_record(policy=policy, actor=actor, reason=reason)


def _write_rows(policy: Policy, planned: list, stored: Any, model: type[OfferFields]) -> None:
    """Offers (or remedies) keep their identity by position, so learned acceptance stays with them."""
    existing = sorted(stored, key=lambda o: (o.order, o.pk))
    for index, row in enumerate(planned):
        if index < len(existing):
            row.pk = existing[index].pk
        row.policy = policy
        row.save()
    surplus = [row.pk for row in existing[len(planned) :]]
    if surplus:
        model.objects.filter(pk__in=surplus).delete()


# --- Restoring a version -------------------------------------------------------------


class RestoreError(PackError):
    """The version cannot be restored (it does not exist, or its content no longer validates); nothing written."""


def _numbers_in_words(numbers: list[int]) -> str:
    if not numbers:
        return "none"
    if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"v{numbers[0]}–v{numbers[-1]}"
    return ", ".join(f"v{n}" for n in numbers)


@transaction.atomic
def policy_restore(*, policy: Policy, number: int, actor: AbstractBaseUser | None = None) -> PolicyVersion | None:
    """Make the policy's content that of its version ``number`` again, as a new version.

    The version's snapshot goes through the pack importer's planning (the
    models' own validation) and writing (offers and remedies keep their
    identity by position), so the new version's snapshot equals the old one.
    Returns the new version, or None when the policy already is as that
    version (nothing written). Raises :class:`RestoreError`, with nothing
    written, for a version that does not exist or content that no longer
    validates (a category since deleted, a slug another policy took).
    """
    locked = Policy.objects.select_for_update().get(pk=policy.pk)  # one writer per policy at a time
    version = locked.versions.filter(number=number).first()
    if version is None:
        numbers = list(locked.versions.order_by("number").values_list("number", flat=True))
        raise RestoreError(
            [f"policy {locked.slug} has no version {number}; its versions are {_numbers_in_words(numbers)}"]
        )
    snapshot = version.snapshot
    if not isinstance(snapshot, dict) or not isinstance(snapshot.get("slug"), str):
        raise RestoreError([f"v{number}: the stored snapshot is not a policy in pack format; it cannot be restored"])

    category_ids = dict(Category.objects.values_list("slug", "pk"))
    named = (snapshot.get("conditions") or {}).get("categories") or []
    missing = sorted({slug for slug in named if isinstance(slug, str)} - category_ids.keys())
    if missing:
        raise RestoreError(
            [
                f"v{number}.conditions.categories: {', '.join(map(repr, missing))} no longer "
                f"{'exists' if len(missing) == 1 else 'exist'}; create {'it' if len(missing) == 1 else 'them'} "
                "again to restore this version, or edit the policy instead"
            ]
        )

    reader = _Reader()
    item = _plan_policy(reader, snapshot, f"v{number}", {snapshot["slug"]: locked}, set(category_ids))
    if reader.errors:
        raise RestoreError(reader.errors)
    restored = _write_policy(item, category_ids, actor=actor, reason=f"restored from v{number}")
    policy.refresh_from_db()
    return restored
