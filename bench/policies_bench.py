"""Policy packs and the policy revision: how long imports take and what a revision read costs."""

from __future__ import annotations

import time
from statistics import median
from typing import Any


def synthetic_pack(policies: int, categories: int = 50) -> dict[str, Any]:
    return {
        "categories": [{"slug": f"cat_{i}", "name": f"category {i}"} for i in range(categories)],
        "perks": [
            {"slug": f"perk-{i}", "name": f"Perk {i}", "tags": [f"interest{i % 12}"], "cost": "10.00"}
            for i in range(20)
        ],
        "policies": [
            {
                "slug": f"policy-{i}",
                "name": f"Policy {i}",
                "priority": i % 101,
                "conditions": {"categories": [f"cat_{i % categories}"], "severity_min": 1 + i % 3},
                "budget": {"monthly_cap": "10000.00", "per_customer_cap_30d": "200.00"},
                "offers": [
                    {"kind": "percent_discount", "title": "{value}% off", "value": "20", "max_amount": "40.00"},
                    {"kind": "fixed_credit", "title": "{amount} {currency} credit", "value": f"{5 + i % 20}.00"},
                    {"kind": "personalized_perk", "title": "{perk_name} on us"},
                ],
            }
            for i in range(policies)
        ],
    }


def timed(fn, *args, **kwargs) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def run(policies: int = 1000) -> list[str]:
    from policies.packs import pack_import
    from policies.selectors import policy_revision_current
    from policies.serialization import pack_export

    pack = synthetic_pack(policies)
    lines = [f"policy packs ({policies} policies, 3 offers each)"]
    seconds, _ = timed(pack_import, document=pack)
    lines.append(f"  import, all new:        {seconds:7.2f} s  ({policies / seconds:,.0f} policies/s)")
    seconds, _ = timed(pack_import, document=pack)
    lines.append(f"  re-import, unchanged:   {seconds:7.2f} s  ({policies / seconds:,.0f} policies/s)")
    for entry in pack["policies"]:
        entry["priority"] = (entry["priority"] + 1) % 101
    seconds, _ = timed(pack_import, document=pack)
    lines.append(f"  import, all changed:    {seconds:7.2f} s  ({policies / seconds:,.0f} policies/s)")
    seconds, _ = timed(pack_export)
    lines.append(f"  export:                 {seconds:7.2f} s")

    samples, calls = [], 2000
    for _ in range(5):
        seconds, _ = timed(lambda: [policy_revision_current() for _ in range(calls)])
        samples.append(seconds / calls)
    lines.append(f"policy revision read:     {median(samples) * 1e6:7.1f} µs per call (median of 5 x 2000)")
    return lines
