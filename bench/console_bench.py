"""``python -m bench console``: the console's two round trips beside the REST calls they stand for.

In-process (Django's test client, the whole middleware stack, no network), on the demo pack with its 30 days
of history, in a fresh database (SQLite unless DATABASE_URL): ``--requests`` times, interleaved, the agents'
"Get options" (``POST /console/options/`` as htmx posts it: the options fragment) beside
``POST /api/v1/offer-sets/`` with the same incident, and "Record" (``POST /console/offer-sets/{id}/outcome/``)
beside ``POST /api/v1/offer-sets/{id}/outcome/``; then the status fragment the page polls. Prints medians and
95th percentiles per call and the console's median as a ratio of the API's (rendering HTML against JSON).
Tasks run eagerly here, so recording is inside the timed request on both sides alike.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable

HTMX = {"HTTP_HX_REQUEST": "true"}


def _incident(index: int) -> tuple[dict[str, str], dict[str, object]]:
    """The console's form and the API's body for one gold customer's late delivery (a new customer each time,
    so no incident is a repeat of another)."""
    customer_id = f"BENCH-{index:05d}"
    form = {
        "customer_id": customer_id,
        "name": "Linda Park",
        "tier": "gold",
        "lifetime_value": "5400.00",
        "interests": "sports, cooking",
        "category": "late_delivery",
        "severity": "3",
        "fault": "company",
        "correctable": "on",
        "order_value": "80.00",
    }
    body = {
        "customer": {
            "external_id": customer_id + "-api",
            "name": "Linda Park",
            "tier": "gold",
            "lifetime_value": "5400.00",
            "interests": ["sports", "cooking"],
        },
        "incident": {"category": "late_delivery", "severity": 3, "fault": "company", "order_value": "80.00"},
    }
    return form, body


def _line(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"  {name:<44} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms"


def run(*, requests: int) -> None:
    from django.core.management import call_command
    from django.test import Client
    from rest_framework.test import APIClient

    from compensation.models import OfferSet
    from compensation.services.users import user_token_issue

    started = time.perf_counter()
    call_command("load_demo", stdout=io.StringIO(), stderr=io.StringIO())
    print(f"demo pack and history loaded in {time.perf_counter() - started:.1f} s")
    user, token, _ = user_token_issue(username="bench-agent", role="agent")
    console = Client(SERVER_NAME="127.0.0.1")  # a host ALLOWED_HOSTS has
    console.force_login(user)
    api = APIClient(SERVER_NAME="127.0.0.1")
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    def call(send: Callable[..., object], code: int, *args: object, **kwargs: object) -> float:
        """Milliseconds for one request; anything but ``code`` stops the bench, saying what came back."""
        started = time.perf_counter()
        response = send(*args, **kwargs)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != code:  # type: ignore[attr-defined]
            status, content = response.status_code, response.content[:300]  # type: ignore[attr-defined]
            raise SystemExit(f"bench: expected {code}, got {status}: {content!r}")
        return elapsed

    # Warm up both paths (the compiled policy index, templates, the URL resolver).
    form, body = _incident(0)
    call(console.post, 200, "/console/options/", form, **HTMX)
    call(api.post, 201, "/api/v1/offer-sets/", body, format="json")

    times: dict[str, list[float]] = {key: [] for key in ("console_get", "api_get", "console_rec", "api_rec", "poll")}
    for index in range(1, requests + 1):
        form, body = _incident(index)
        times["console_get"].append(call(console.post, 200, "/console/options/", form, **HTMX))
        times["api_get"].append(call(api.post, 201, "/api/v1/offer-sets/", body, format="json"))
        console_set = OfferSet.objects.get(customer__external_id=form["customer_id"])
        api_set = OfferSet.objects.get(customer__external_id=body["customer"]["external_id"])  # type: ignore[index]
        record = {"choice": "b", "satisfaction": "4"}
        times["console_rec"].append(
            call(console.post, 200, f"/console/offer-sets/{console_set.pk}/outcome/", record, **HTMX)
        )
        times["api_rec"].append(call(api.post, 202, f"/api/v1/offer-sets/{api_set.pk}/outcome/", record, format="json"))
        times["poll"].append(call(console.get, 200, f"/console/offer-sets/{console_set.pk}/status/", **HTMX))

    print(f"\n{requests} requests each, interleaved, in-process (test client), eager tasks:")
    print(_line("Get options  POST /console/options/", times["console_get"]))
    print(_line("             POST /api/v1/offer-sets/", times["api_get"]))
    print(_line("Record       POST /console/.../outcome/", times["console_rec"]))
    print(_line("             POST /api/v1/.../outcome/", times["api_rec"]))
    print(_line("Status poll  GET /console/.../status/", times["poll"]))
    get_ratio = statistics.median(times["console_get"]) / statistics.median(times["api_get"])
    rec_ratio = statistics.median(times["console_rec"]) / statistics.median(times["api_rec"])
    print(f"\nconsole / API, medians: Get options {get_ratio:.2f}x, Record {rec_ratio:.2f}x")
