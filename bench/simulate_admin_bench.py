"""The admin's "Simulate" over the issue's data: 1,000 policies and 300,000 incidents, 10,000 a day for 30 days.

``DATABASE_URL=postgres://... python -m bench.simulate_admin_bench``: a fresh ``<name>_bench`` database
(bench/setup.py), seeded with offer_sets_bench's helpers (1,000 policies over 50 categories, 100,000 customers,
300,000 incidents), whose ``created_at`` are then spread over the last 30 days. Then, through Django's test
client as a logged-in superuser: one policy's change form posted with "Simulate" and an offer's value changed
(days 30), twice (the first builds the policy index, as a fresh process would), sampled as the admin samples
(``SIMULATION_ADMIN_SAMPLE``); with ``--unsampled`` the same over every incident, for comparison (minutes); and the
pack page with a full export in which one offer changed. Figures are printed, never asserted.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import Any

from bench.setup import django_setup


def spread_over_days(days: int) -> None:
    """Incident ``created_at`` spread evenly over the last ``days`` days (id modulo days), as a live system's."""
    from django.db import connection
    from django.utils import timezone

    from compensation.models import Incident

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Incident._meta.db_table} SET created_at = %s - (id %% %s) * interval '1 day' "  # noqa: S608
            "- (id %% 997) * interval '1 second'",
            [now - timedelta(minutes=1), days],
        )


def timed_post(client: Any, url: str, data: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    response = client.post(url, data)
    return time.perf_counter() - started, response


def describe(label: str, seconds: float, response: Any, out) -> None:
    simulation = response.context["simulation"] if response.context else None
    if response.status_code != 200 or simulation is None:
        print(f"{label}: status {response.status_code}, no simulation", file=out)
        return
    result = simulation.result
    sample = simulation.sample_note or f"all {result['incidents']:,} incidents"
    print(
        f"{label}: {seconds:.2f} s (the simulation itself {simulation.seconds:.2f} s); {sample}; "
        f"changed {result['changed']:,}, expected cost {result['expected_cost_before']} -> "
        f"{result['expected_cost_after']}",
        file=out,
    )


def run(*, unsampled: bool = False, out=sys.stdout) -> None:
    import json

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from bench import offer_sets_bench
    from compensation.models import Incident
    from policies.models import Policy
    from policies.serialization import pack_export
    from tests.policies.test_admin import page_form

    setup_test_environment()  # the test client's host; nothing else of the test runner
    offer_sets_bench.seed(out=out)
    spread_over_days(30)
    print(f"incidents in the last 30 days: {Incident.objects.count():,}", file=out)

    user = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", "x")
    client = Client()
    client.force_login(user)
    policy = Policy.objects.filter(offers__kind="fixed_credit").order_by("pk").first()
    url = reverse("admin:policies_policy_change", args=[policy.pk])
    data = page_form(client.get(url), "policy_form")
    credit = next(key for key, value in data.items() if key.endswith("-kind") and value == "fixed_credit")
    value_key = credit.removesuffix("-kind") + "-value"
    data[value_key] = str(float(data[value_key]) + 5)
    data.update({"_simulate": "Simulate", "_simulate-days": "30"})
    print(
        f"policy {policy.slug}: {value_key} {page_form(client.get(url), 'policy_form')[value_key]} -> "
        f"{data[value_key]}; SIMULATION_ADMIN_SAMPLE={settings.SIMULATION_ADMIN_SAMPLE:,}",
        file=out,
    )
    for attempt in ("first (cold policy index)", "second", "third"):
        describe(f"Simulate, {attempt}", *timed_post(client, url, data), out=out)

    if unsampled:
        limit, settings.SIMULATION_ADMIN_SAMPLE = settings.SIMULATION_ADMIN_SAMPLE, 10**9
        describe("Simulate, unsampled (for comparison)", *timed_post(client, url, data), out=out)
        settings.SIMULATION_ADMIN_SAMPLE = limit

    pack = pack_export()
    entry = next(p for p in pack["policies"] if p["slug"] == policy.slug)
    entry["offers"][int(value_key.split("-")[1])]["value"] = data[value_key]
    text = json.dumps(pack).encode()
    upload = SimpleUploadedFile("export.json", text)
    seconds, response = timed_post(client, reverse("admin:policies_policy_simulate"), {"pack": upload, "days": "30"})
    describe(f"pack page, full export ({len(text) / 1e6:.2f} MB, one offer changed)", seconds, response, out)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.simulate_admin_bench", description=__doc__)
    parser.add_argument("--unsampled", action="store_true", help="also simulate over every incident (minutes)")
    args = parser.parse_args()
    url = django_setup()
    print(f"database: {url.split('@')[-1]}")
    run(unsampled=args.unsampled)
