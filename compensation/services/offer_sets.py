"""Creating an offer set: the first request path (docs/architecture.md), in one transaction.

Customer upsert (one statement), incident create-or-reuse with repeat counts,
the engine over the in-memory policy index, and the snapshot written in two
statements. The number of queries does not depend on how many policies exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from compensation import learning
from compensation.authority import user_authority
from compensation.engine import compute_options
from compensation.engine_types import Candidate, CustomerFacts, EngineResult, IncidentFacts
from compensation.models import Customer, Escalation, Incident, Offer, OfferSet, Remedy
from compensation.periods import local_date
from compensation.selectors import RequestFacts, perk_grant_dates, request_facts
from compensation.services.customers import (
    CUSTOMER_FACTS_TRUSTED,
    DEFAULTS,
    TRUSTED_FIELDS,
    CustomerWrite,
    customer_facts_mode,
    customers_upsert,
    offer_set_customer_write,
)
from compensation.services.escalations import escalation_open_for_incident
from compensation.sql import insert_select_sql, insert_values_sql
from policies.index import CompiledCategory, PolicyIndex
from policies.models import Category


@dataclass(frozen=True)
class OfferSetCreated:
    offer_set: OfferSet
    offers: list[Offer]
    escalation: Escalation | None
    not_offered: list[dict[str, Any]] | None
    remedies: list[Remedy]


def offer_set_insert(*, offer_set: OfferSet, offers: list[Offer], incident: Incident | None = None) -> None:
    """Write the snapshot: on PostgreSQL the set and its options in one statement, else two.

    The set's id is made here (a UUID), so the options need nothing back from
    the database; the foreign keys are checked at commit. ``incident``, a new
    unsaved incident (PostgreSQL only), is written first in the same statement.
    """
    quote = connection.ops.quote_name
    if incident is not None:
        incident_sql, incident_params = insert_select_sql(incident, source=None)
        set_sql, set_params = insert_select_sql(offer_set, source="incident", columns={"incident_id": "incident.id"})
        head = f"WITH incident AS ({incident_sql} RETURNING id)"
        params = incident_params + set_params
        with connection.cursor() as cursor:
            if offers:
                offers_sql, offers_params = insert_values_sql(offers)
                cursor.execute(
                    f"{head}, offer_set AS ({set_sql} RETURNING incident_id) {offers_sql} "  # noqa: S608 - names only
                    f"RETURNING {quote(Offer._meta.pk.column)}, (SELECT incident_id FROM offer_set)",
                    params + offers_params,
                )
                rows = cursor.fetchall()
                ids = [row[0] for row in rows]
                incident.pk = rows[0][1]
            else:
                cursor.execute(f"{head} {set_sql} RETURNING incident_id", params)
                ids = []
                incident.pk = cursor.fetchone()[0]
        incident._state.adding = False
        offer_set.incident = incident
    else:
        set_sql, set_params = insert_values_sql([offer_set])
        with connection.cursor() as cursor:
            if not offers:
                cursor.execute(set_sql, set_params)
                ids = []
            else:
                offers_sql, offers_params = insert_values_sql(offers)
                offers_sql += f" RETURNING {quote(Offer._meta.pk.column)}"
                if connection.vendor == "postgresql":
                    cursor.execute(f"WITH offer_set AS ({set_sql}) {offers_sql}", set_params + offers_params)
                else:
                    cursor.execute(set_sql, set_params)
                    cursor.execute(offers_sql, offers_params)
                ids = [row[0] for row in cursor.fetchall()]  # in the order of VALUES, as bulk_create assumes
    offer_set._state.adding = False
    for offer, pk in zip(offers, ids, strict=True):
        offer.pk = pk
        offer._state.adding = False


def customer_upsert(
    *,
    external_id: str,
    fields: Mapping[str, Any],
    now: datetime,
    by: str,
    initial: Mapping[str, Any] | None = None,
    relax_commit: bool = False,
) -> tuple[Customer, bool]:
    """Create or update the customer; fields left out keep their stored values (``initial``: set on a new
    customer only). Returns the customer as stored and whether this call created it.

    One statement on PostgreSQL (:func:`compensation.services.customers.customers_upsert`: the upsert
    and the change rows, named ``by``), so two concurrent requests for the same new customer both
    succeed.

    ``relax_commit`` (PostgreSQL) lets the surrounding transaction's commit
    return before its WAL reaches the disk, set in this same round trip. An
    offer set is a snapshot an agent can always ask for again: should the
    database crash in the few hundred milliseconds after the commit, the worst
    case is a lost snapshot, never a broken one. Outcome submissions keep full
    durability.
    """
    write = CustomerWrite(external_id=external_id, fields=fields, initial=initial or {})
    (written,) = customers_upsert(writes=[write], by=by, now=now, relax_commit=relax_commit)
    return written.customer, written.created


def incident_details(*, category: CompiledCategory, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "category_id": category.id,
        "severity": data["severity"],
        "fault": data["fault"],
        "correctable": data["correctable"],
        "order_value": data["order_value"],
        "currency": data["currency"],
        "description": data["description"],
        "occurred_at": data.get("occurred_at") or now,
    }


def incident_reuse(*, customer: Customer, external_ref: str) -> Incident | None:
    """The stored incident of this customer's ticket, as it is.

    Reusing means the ticket's first post stands: its facts, time and repeat
    counts (the same ticket posted twice is not a repeat), so earlier offer
    sets keep showing what they were computed from.
    """
    return Incident.objects.filter(customer=customer, external_ref=external_ref).first()


def incident_new(
    *, customer: Customer, external_ref: str | None, details: dict[str, Any], repeat_count: int, same_count: int
) -> Incident:
    """A new, unsaved incident; ``repeat_count`` and ``same_count`` include it."""
    return Incident(
        customer=customer,
        external_ref=external_ref,
        repeat_count=repeat_count,
        same_category_repeat_count=same_count,
        created_at=timezone.now(),  # what auto_now_add sets on save(); the SQL inserts need it given
        **details,
    )


def incident_insert(incident: Incident) -> Incident:
    """Save a new incident; if the same ticket was posted concurrently, the one that won.

    ``INSERT … ON CONFLICT DO NOTHING RETURNING id``: no savepoint needed.
    """
    if not incident.external_ref:
        incident.save(force_insert=True)
        return incident
    sql, params = insert_select_sql(incident, source=None)
    sql += " ON CONFLICT (customer_id, external_ref) WHERE external_ref IS NOT NULL DO NOTHING RETURNING id"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return Incident.objects.get(customer=incident.customer, external_ref=incident.external_ref)
    incident.pk = row[0]
    incident._state.adding = False
    return incident


def customer_facts(customer: Customer) -> CustomerFacts:
    return CustomerFacts(
        external_id=customer.external_id,
        name=customer.name,
        tier=customer.tier,
        lifetime_value=customer.lifetime_value,
        interests=frozenset(customer.interests or ()),
    )


def incident_facts(incident: Incident, category: CompiledCategory) -> IncidentFacts:
    return IncidentFacts(
        category_id=category.id,
        category_name=category.name,
        severity=incident.severity,
        fault=incident.fault,
        correctable=incident.correctable,
        order_value=incident.order_value,
        repeat_count=incident.repeat_count,
        same_category_repeat_count=incident.same_category_repeat_count,
        occurred_on=local_date(incident.occurred_at),
        window_days=settings.INCIDENT_REPEAT_WINDOW_DAYS,
        ticket=incident.external_ref or "",
    )


def facts_read(
    *,
    index: PolicyIndex,
    category_id: int,
    customer_id: int | None,
    customer_is_new: bool,
    occurred_at: datetime,
    count_repeats: bool,
    now: datetime,
) -> RequestFacts:
    """One query for repeat counts, budgets, recent perks and acceptance statistics."""
    scope = index.budget_scope(category_id)
    return request_facts(
        customer_id=customer_id or 0,
        customer_is_new=customer_is_new or customer_id is None,
        count_repeats=count_repeats,
        category_id=category_id,
        occurred_at=occurred_at,
        window_days=settings.INCIDENT_REPEAT_WINDOW_DAYS,
        monthly_capped=scope.monthly_capped,
        customer_capped=scope.customer_capped,
        wants_perks=scope.wants_perks,
        now=now,
    )


def engine_run(
    *,
    index: PolicyIndex,
    customer: CustomerFacts,
    incident: IncidentFacts,
    facts: RequestFacts,
    approval_limit: Decimal | None,
    explain: bool,
    customer_id: int | None = None,
    seed: uuid.UUID | None = None,
) -> EngineResult:
    """The engine over what the database said, with the settings' money locale and learning mode; ``seed``:
    the offer set's id, which seeds the ranking's draws (a preview, which makes no set, draws afresh)."""
    spending = facts.spending
    if explain and customer_id and spending.recent_perk_ids:  # to say when a matching perk was given
        spending = replace(spending, recent_perk_dates=perk_grant_dates(customer_id=customer_id))
    return compute_options(
        index=index,
        customer=customer,
        incident=incident,
        spending=spending,
        stats=facts.stats,
        currency=settings.DEFAULT_CURRENCY,
        approval_limit=approval_limit,
        explain=explain,
        money_locale=settings.MONEY_LOCALE,
        mode=learning_mode(),
        seed=learning.seed_of(seed or uuid.uuid4()),
    )


def learning_mode() -> learning.LearningMode:
    """``RANKING_EXPLORATION`` and ``RANKING_POSITION_CORRECTION``, as the engine takes them."""
    return learning.LearningMode.from_settings(
        exploration=settings.RANKING_EXPLORATION, correction=settings.RANKING_POSITION_CORRECTION
    )


def not_offered_payload(result: EngineResult) -> list[dict[str, Any]]:
    """``not_offered`` as the API shows it: policies that gave no option, then offers that were not shown."""
    entries = []
    for n in result.not_offered:
        entry: dict[str, Any] = {"policy": {"id": n.policy.id, "name": n.policy.name}}
        if n.offer is not None:
            entry["offer"] = {"kind": n.offer.kind, "title": n.offer_title}
        entry["reason"] = n.reason
        entries.append(entry)
    return entries


def shown_fields(candidate: Candidate, title: str, message: str) -> dict[str, Any]:
    """What an option and a remedy item keep of the candidate, exactly as the agent read it."""
    return {
        "kind": candidate.kind,
        "title": title,
        "message": message,
        "value": candidate.value,
        "unit": candidate.unit,
        "estimated_cost": candidate.estimated_cost,
        "currency": settings.DEFAULT_CURRENCY,
        "policy_id": candidate.policy.id,
        "policy_name": candidate.policy.name,
        "policy_version": candidate.policy.version,
    }


def remedies_store(
    *, result: EngineResult, incident: Incident, offer_set: OfferSet, reused: bool, now: datetime
) -> list[Remedy]:
    """The incident's remedy: the items this set adds (kinds it did not have yet), and, for a reused
    incident, those an earlier set added, given or not. One insert, and one read when reused."""
    if not result.remedy and not reused:
        return []
    rows = [
        Remedy(
            incident=incident,
            customer_id=incident.customer_id,
            offer_set=offer_set,
            **shown_fields(item.candidate, item.title, item.message),
            requires_approval=item.candidate.offer.requires_approval,
            remedy_template_id=item.candidate.offer.id,
            created_at=now,
            category_id=incident.category_id,
        )
        for item in result.remedy
    ]
    if not reused:
        return Remedy.objects.bulk_create(rows)
    if rows:  # a kind the incident already has keeps its first item (given once per incident)
        Remedy.objects.bulk_create(rows, ignore_conflicts=True)
    return list(Remedy.objects.filter(incident=incident).order_by("pk"))


def offer_set_preview(
    *, index: PolicyIndex, customer: dict[str, Any], incident: dict[str, Any], now: datetime | None = None
) -> EngineResult:
    """What an agent would be offered for this customer and incident right now; creates nothing.

    The admin's "Try the policies". The same reads and engine as :func:`offer_set_create`:
    ``customer`` may name a stored customer (``external_id``), whose budget caps and recent
    perks then count; the repeat counts are given in ``incident``, not counted. With
    ``CUSTOMER_FACTS=trusted`` and an ``external_id``, the stored customer's tier, lifetime value and
    interests are used instead of the given ones (a customer not stored yet: ``standard``, ``0``, none),
    as an offer-set POST would.
    """
    now = now or timezone.now()
    category: CompiledCategory = incident["category"]
    external_id = customer.get("external_id") or ""
    stored = (
        Customer.objects.filter(external_id=external_id).values("pk", "tier", "lifetime_value", "interests").first()
        if external_id
        else None
    )
    stored_id = stored["pk"] if stored else None
    if external_id and customer_facts_mode() == CUSTOMER_FACTS_TRUSTED:
        # As the POST would: a stored customer's facts, or those a new customer starts with.
        facts_of = stored or {**DEFAULTS, "interests": []}
        customer = {**customer, **{name: facts_of[name] for name in TRUSTED_FIELDS if name != "email"}}
    facts = facts_read(
        index=index,
        category_id=category.id,
        customer_id=stored_id,
        customer_is_new=stored_id is None,
        occurred_at=now,
        count_repeats=False,
        now=now,
    )
    return engine_run(
        index=index,
        customer=CustomerFacts(
            external_id=external_id or "preview",
            name=customer.get("name", ""),
            tier=customer["tier"],
            lifetime_value=customer["lifetime_value"],
            interests=frozenset(customer.get("interests", ())),
        ),
        incident=IncidentFacts(
            category_id=category.id,
            category_name=category.name,
            severity=incident["severity"],
            fault=incident["fault"],
            correctable=incident["correctable"],
            order_value=incident["order_value"],
            repeat_count=incident["repeat_count"],
            same_category_repeat_count=incident["same_category_repeat_count"],
            occurred_on=local_date(now),
            window_days=settings.INCIDENT_REPEAT_WINDOW_DAYS,
            ticket=incident.get("external_ref") or "",
        ),
        facts=facts,
        approval_limit=settings.AGENT_APPROVAL_LIMIT,
        explain=True,
        customer_id=stored_id,
    )


def offer_set_create(
    *,
    user: Any,
    index: PolicyIndex,
    customer: dict[str, Any],
    incident: dict[str, Any],
    explain: bool = False,
    now: datetime | None = None,
    set_id: uuid.UUID | None = None,
    expires_at: datetime | None = None,
) -> OfferSetCreated:
    """Upsert the customer, create or reuse the incident, compute and store the ranked options.

    ``customer`` and ``incident`` are validated input (see the serializers);
    ``incident["category"]`` is the compiled category. ``set_id``: the new set's id (default a random
    UUID); it seeds the ranking's draws, so a caller replaying a fixed history (the demo's) passes its own.
    ``expires_at``: when the choice closes (default ``OFFER_SET_TTL_MINUTES`` from now; an event's customers
    have ``EVENT_CHOICE_DAYS``).
    """
    now = now or timezone.now()
    category: CompiledCategory = incident["category"]
    approval_limit = user_authority(user).per_option  # the agent's, by their groups; None for a manager
    with transaction.atomic():
        write = offer_set_customer_write(customer)  # what CUSTOMER_FACTS lets an offer-set POST set
        stored_customer, is_new = customer_upsert(
            external_id=write.external_id,
            fields=write.fields,
            initial=write.initial,
            now=now,
            by=user.get_username(),
            relax_commit=True,
        )
        details = incident_details(category=category, data=incident, now=now)
        external_ref = incident.get("external_ref")
        stored_incident = None
        reused = False
        if external_ref and not is_new:
            stored_incident = incident_reuse(customer=stored_customer, external_ref=external_ref)
            reused = stored_incident is not None
            if stored_incident is not None and stored_incident.category_id != category.id:
                # The ticket keeps the category it was first posted with (if that is still active).
                category = next((c for c in index.categories.values() if c.id == stored_incident.category_id), category)
        facts = facts_read(
            index=index,
            category_id=category.id,
            customer_id=stored_customer.pk,
            customer_is_new=is_new,
            occurred_at=details["occurred_at"],
            count_repeats=stored_incident is None,
            now=now,
        )
        if stored_incident is None:
            stored_incident = incident_new(
                customer=stored_customer,
                external_ref=external_ref,
                details=details,
                repeat_count=facts.repeat_count + 1,
                same_count=facts.same_category_repeat_count + 1,
            )
            # Without a ticket no other post can collide with it: on PostgreSQL it goes in with the snapshot.
            if external_ref or connection.vendor != "postgresql":
                new_incident = stored_incident
                stored_incident = incident_insert(stored_incident)
                reused = stored_incident is not new_incident  # the same ticket, posted concurrently, won
        set_id = set_id or uuid.uuid4()  # before ranking: it seeds the draws
        result = engine_run(
            index=index,
            customer=customer_facts(stored_customer),
            incident=incident_facts(stored_incident, category),
            facts=facts,
            approval_limit=approval_limit,
            explain=explain,
            customer_id=stored_customer.pk,
            seed=set_id,
        )
        not_offered = not_offered_payload(result) if explain else None
        if result.remedy and stored_incident.pk is None:  # its remedy rows need its id
            stored_incident = incident_insert(stored_incident)
        escalation = None
        if result.escalating_policies:
            policy = result.escalating_policies[0]
            if stored_incident.pk is None:
                stored_incident = incident_insert(stored_incident)
            escalation, _ = escalation_open_for_incident(
                incident=stored_incident,
                customer=stored_customer,
                reason=f"Policy {policy.name!r} escalates automatically: severity {stored_incident.severity}, "
                f"{'correctable' if stored_incident.correctable else 'not correctable'}, {category.name}",
                policy_id=policy.id,
                now=now,
            )
        offer_set = OfferSet(
            id=set_id,
            created_by=user,
            customer=stored_customer,
            incident=stored_incident,
            policy_revision=index.revision,
            created_at=now,
            expires_at=expires_at or now + timedelta(minutes=settings.OFFER_SET_TTL_MINUTES),
            not_offered=not_offered or [],
            escalation=escalation,
            email=stored_customer.email,  # follow-ups go here, whatever the customer's address becomes
        )
        offers = [
            Offer(
                offer_set=offer_set,
                label=option.label,
                rank=position,
                **shown_fields(option.candidate, option.title, option.message),
                max_amount=option.candidate.offer.max_amount,
                requires_approval=option.requires_approval,
                offer_template_id=option.candidate.offer.id,
                perk_id=option.candidate.perk.id if option.candidate.perk else None,
                expires_in_days=option.candidate.offer.expires_in_days,
                score=option.score,
                score_breakdown=option.score_breakdown,
                propensity_mean=option.propensity_mean,
                reasons=option.reasons,
            )
            for position, option in enumerate(result.options)
        ]
        offer_set_insert(
            offer_set=offer_set, offers=offers, incident=stored_incident if stored_incident.pk is None else None
        )
        remedies = remedies_store(result=result, incident=stored_incident, offer_set=offer_set, reused=reused, now=now)
        if escalation is not None and escalation.offer_set_id is None:
            escalation.offer_set = offer_set
            escalation.save(update_fields=["offer_set"])
    # The response names the category; the index already knows it, so no query for it.
    stored_incident.category = Category(pk=category.id, slug=category.slug, name=category.name)
    return OfferSetCreated(
        offer_set=offer_set, offers=offers, escalation=escalation, not_offered=not_offered, remedies=remedies
    )
