"""``python -m bench simulate``: a policy pack simulated over 30 days of incidents at 10,000 a day.

Seeds PostgreSQL once into ``<name>_simulate_bench`` (kept between runs, ``--reseed`` to seed anew): 1,000
active policies over 50 categories (three offers each), 100,000 customers, 300,000 incidents created over the
30 days before the seeding, and learning counters for every offer. Every run replays with ``now`` set to
the moment the data was seeded, so the kept data stays a 30-day window whenever the bench runs.

Then it simulates, side by side in one run:

- a pack changing 10% of the policies (the 1,000 exported, every tenth one's offers raised),
- a pack changing every policy (every incident replayed on both sides: the worst case),
- a one-policy change as the admin's Simulate button makes it, in full and sampled to
  ``SIMULATION_ADMIN_SAMPLE`` incidents,

each with ``--simulate-workers`` processes (default: one per core) and, for the worst case, one process,
printing seconds, engine computations (each side of each incident replayed) and computations per second
per process. The target: under 90 s for the whole 300,000 on this machine's 2 cores.
"""

from __future__ import annotations

import copy
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bench import reports_bench
from bench.offer_sets_bench import CATEGORIES, seed_customers, seed_policies

POLICIES = 1_000
CUSTOMERS = 100_000
INCIDENTS = 300_000
DAYS = 30
SPEC = f"policies={POLICIES} customers={CUSTOMERS} incidents={INCIDENTS} days={DAYS} v1"
TARGET_SECONDS = 90


def django_setup(*, reseed: bool, out) -> tuple[bool, datetime | None]:
    """Point Django at the kept database and migrate it; returns (needs seeding, when it was seeded)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench: the simulate benchmark needs PostgreSQL (DATABASE_URL)")
    base, _, name = url.rpartition("/")
    name = f"{name.split('?')[0] or 'recovery'}_simulate_bench"
    stored = reports_bench._database_comment_read(base, name)
    os.environ["DATABASE_URL"] = f"{base}/{name}"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 30)
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ["DJANGO_SETTINGS_MODULE"] = "recovery_project.settings"
    sys.path.insert(0, str(reports_bench.ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    seeded_at = None
    why = "--reseed" if reseed else ("none yet" if stored is None else "")
    if not why:
        key, _, when = stored[0].partition(" seeded_at=")
        if key != SPEC or not when:
            why = f"it was seeded as: {stored[0] or 'unknown'}"
        else:
            seeded_at = datetime.fromisoformat(when)
    if why:
        print(f"database {name}: seeding anew ({why})", file=out)
        reports_bench._database_create(base, name)
        call_command("migrate", verbosity=0)
        return True, None
    call_command("migrate", verbosity=0)
    print(f"database {name}: reusing the data seeded at {seeded_at.isoformat()}; --reseed to seed anew", file=out)
    return False, seeded_at


def seed(*, out) -> datetime:
    from compensation.models import AcceptanceStat, Customer, Incident, PositionStat
    from policies.models import Category, OfferTemplate
    from policies.services import policy_revision_bump

    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    categories = Category.objects.bulk_create(
        [Category(slug=f"cat_{i}", name=f"problem {i}") for i in range(CATEGORIES)]
    )
    seed_policies(POLICIES, categories=categories)
    rng = random.Random(7)
    seed_customers(CUSTOMERS, rng)
    customer_ids = list(Customer.objects.values_list("pk", flat=True))
    batch = []
    for _ in range(INCIDENTS):
        at = now - timedelta(seconds=rng.uniform(60, DAYS * 86400 - 60))
        batch.append(
            Incident(
                customer_id=customer_ids[rng.randrange(CUSTOMERS)],
                category_id=categories[rng.randrange(CATEGORIES)].pk,
                severity=rng.randint(1, 5),
                order_value=Decimal(rng.randint(0, 400)),
                currency="USD",
                occurred_at=at,
                repeat_count=rng.choice([1, 1, 1, 2, 3]),
            )
        )
        if len(batch) == 10_000:
            Incident.objects.bulk_create(batch)
            batch = []
    Incident.objects.bulk_create(batch)
    # created_at is auto_now_add: spread it as the incidents were, 10,000 a day.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE compensation_incident SET created_at = occurred_at")
    templates = OfferTemplate.objects.values_list("pk", "policy__categories")
    AcceptanceStat.objects.bulk_create(
        [
            AcceptanceStat(
                offer_template_id=template,
                category_id=category,
                offered=(a := rng.randint(0, 200)) + (b := rng.randint(0, 200)) + (c := rng.randint(0, 200)),
                shown_a=a,
                shown_b=b,
                shown_c=c,
                chosen=rng.randint(0, (a + b + c) // 3),
            )
            for template, category in templates
            if category is not None
        ],
        batch_size=5000,
    )
    PositionStat.objects.bulk_create(
        [
            PositionStat(category=category, outcomes=1000, chosen_a=400, chosen_b=200, chosen_c=100)
            for category in categories
        ]
    )
    policy_revision_bump()
    print(
        f"seeded {POLICIES:,} policies / {CATEGORIES} categories, {CUSTOMERS:,} customers, {INCIDENTS:,} incidents "
        f"over {DAYS} days in {time.perf_counter() - started:.0f} s",
        file=out,
    )
    return now


def _raised(policy: dict[str, Any]) -> dict[str, Any]:
    policy = copy.deepcopy(policy)
    for offer in policy["offers"]:
        if offer["value"] is not None and offer["kind"] not in {"percent_discount", "refund"}:
            offer["value"] = str(Decimal(offer["value"]) + 5)
    return policy


def drafts() -> dict[str, dict[str, Any]]:
    from policies.serialization import pack_export

    policies = pack_export()["policies"]
    return {
        "10% of policies changed": {"policies": [_raised(p) if n % 10 == 0 else p for n, p in enumerate(policies)]},
        "every policy changed": {"policies": [_raised(p) for p in policies]},
        "one policy changed": {"policies": [_raised(policies[0])]},
    }


def timed(label: str, document: dict[str, Any], *, now: datetime, workers: int, out, sample_every: int = 1) -> float:
    from compensation.services import simulations

    started = time.perf_counter()
    replay = simulations.replay_prepare(document, days=DAYS, now=now, sample_every=sample_every)
    prepared = time.perf_counter() - started
    tally = simulations.replay_all(replay, workers=workers)
    simulations.simulation_result(replay, tally, now=now)
    seconds = time.perf_counter() - started
    computations = tally.incidents + tally.replayed_after
    rate = computations / max(seconds - prepared, 1e-9) / workers
    verdict = (
        "" if sample_every > 1 else f"  {'under' if seconds < TARGET_SECONDS else 'OVER'} the {TARGET_SECONDS} s target"
    )
    print(
        f"  {label:<44} workers {workers}  {seconds:6.1f} s  (draft and counters {prepared:4.1f} s)  "
        f"{tally.incidents:>7,} incidents, {computations:>7,} computations, {rate:>7,.0f}/s per process, "
        f"{tally.changed:>7,} changed{verdict}",
        file=out,
    )
    return seconds


def run(*, reseed: bool = False, workers: int | None = None, out=sys.stdout) -> None:
    fresh, seeded_at = django_setup(reseed=reseed, out=out)
    if fresh:
        seeded_at = seed(out=out)
        reports_bench._database_comment_write(os.environ["DATABASE_URL"], f"{SPEC} seeded_at={seeded_at.isoformat()}")
    from django.conf import settings

    workers = workers or os.cpu_count() or 1
    print(
        f"simulate: {POLICIES:,} policies, {INCIDENTS:,} incidents over {DAYS} days, now = {seeded_at.isoformat()}, "
        f"{os.cpu_count()} cores",
        file=out,
    )
    packs = drafts()
    timed("10% of policies changed", packs["10% of policies changed"], now=seeded_at, workers=workers, out=out)
    timed("every policy changed", packs["every policy changed"], now=seeded_at, workers=workers, out=out)
    timed("every policy changed", packs["every policy changed"], now=seeded_at, workers=1, out=out)
    timed("one policy changed (admin, in full)", packs["one policy changed"], now=seeded_at, workers=1, out=out)
    sample = settings.SIMULATION_ADMIN_SAMPLE
    every = -(-INCIDENTS // sample)
    timed(
        f"one policy changed (admin, every {every}th)",
        packs["one policy changed"],
        now=seeded_at,
        workers=1,
        out=out,
        sample_every=every,
    )
    admin_button(seeded_at, out=out)


def admin_button(seeded_at: datetime, *, out) -> None:
    """The admin's Simulate on a policy's change form, one offer's value raised, through Django's test client
    (the policy index already built, as in a running server), three times."""
    import time_machine
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from policies.models import Policy
    from tests.policies.test_admin import page_form

    setup_test_environment()  # the test client's host; nothing else of the test runner
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    policy = Policy.objects.filter(offers__kind="fixed_credit").order_by("pk").first()
    url = reverse("admin:policies_policy_change", args=[policy.pk])
    data = page_form(client.get(url), "policy_form")
    credit = next(key for key, value in data.items() if key.endswith("-kind") and value == "fixed_credit")
    value_key = credit.removesuffix("-kind") + "-value"
    data[value_key] = str(Decimal(data[value_key]) + 5)
    data.update({"_simulate": "Simulate", "_simulate-days": str(DAYS)})
    with time_machine.travel(seeded_at, tick=True):  # the kept incidents are the last 30 days
        for attempt in ("first", "second", "third"):
            started = time.perf_counter()
            response = client.post(url, data)
            seconds = time.perf_counter() - started
            simulation = response.context["simulation"] if response.context else None
            if response.status_code != 200 or simulation is None:
                print(f"  admin Simulate ({attempt}): status {response.status_code}, no result", file=out)
                continue
            print(
                f"  {'admin Simulate button, ' + attempt:<44} {seconds:6.1f} s  "
                f"({simulation.sample_note or 'every incident'}; SIMULATION_ADMIN_SAMPLE "
                f"{settings.SIMULATION_ADMIN_SAMPLE:,})  under 10 s: {'yes' if seconds < 10 else 'NO'}",
                file=out,
            )
