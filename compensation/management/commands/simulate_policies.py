"""``manage.py simulate_policies PATH [--days 30] [--json]``: what a policy pack would change, before it goes live."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compensation.services.simulations import DAYS_MAX, DAYS_MIN, SimulationError, simulate_policies
from policies.packs import PackError, pack_load


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise CommandError(f"--days must be a whole number from {DAYS_MIN} to {DAYS_MAX}, got {text!r}") from None
    if not DAYS_MIN <= days <= DAYS_MAX:
        raise CommandError(f"--days must be a whole number from {DAYS_MIN} to {DAYS_MAX}, got {days}")
    return days


class Command(BaseCommand):
    help = (
        "Replay the incidents of the last --days days against the live policies (before) and against them with "
        "the pack at PATH applied as an import would apply it, --replace not implied (after). Ranking uses "
        "posterior means; budgets and caps exclude nothing. Nothing is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="pack file (YAML, or JSON for a .json file), or - for standard input")
        parser.add_argument("--days", default="30", help=f"days of incidents to replay, {DAYS_MIN}-{DAYS_MAX} (30)")
        parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
        parser.add_argument(
            "--workers",
            type=int,
            default=os.cpu_count() or 1,
            help="processes replaying incidents at once (default: one per core)",
        )

    def handle(self, *args: Any, path: str, days: str, json: bool, workers: int, **options: Any) -> None:
        number = _days(days)
        if workers < 1:
            raise CommandError(f"--workers must be at least 1, got {workers}")
        try:
            document = pack_load("<stdin>", text=sys.stdin.read()) if path == "-" else pack_load(path)
            result = simulate_policies(document, days=number, workers=workers)
        except PackError as exc:
            count = len(exc.errors)
            raise CommandError(
                f"nothing simulated: {count} problem{'s' if count != 1 else ''} in {path}\n" + "\n".join(exc.errors)
            ) from None
        except SimulationError as exc:
            raise CommandError(str(exc)) from None
        if json:
            self.stdout.write(_json_dumps(result))
        else:
            self.stdout.write(simulation_text(result))


def _json_dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=2, ensure_ascii=False)


def simulation_text(result: dict[str, Any]) -> str:
    """The result for a person: totals, the policies whose figures move, warnings and a few examples."""
    lines = [
        f"Replayed {result['incidents']:,} incidents of the last {result['days']} days: "
        f"{result['changed']:,} would get something different.",
        f"Incidents with no options: {result['no_options_before']:,} before, {result['no_options_after']:,} after.",
        f"Expected cost: {result['expected_cost_before']} before, {result['expected_cost_after']} after.",
    ]
    if "sample" in result:
        sample = result["sample"]
        lines.append(f"A sample: every {sample['every']}th incident, {sample['incidents']:,} of {sample['of']:,}.")
    moved = [
        row
        for row in result["policies"]
        if (row["shown_before"], row["expected_cost_before"]) != (row["shown_after"], row["expected_cost_after"])
    ]
    if moved:
        lines += ["", "Policies whose figures change (shown; expected cost):"]
        for row in moved:
            lines.append(
                f"  {row['slug']}: shown {row['shown_before']:,} → {row['shown_after']:,}; "
                f"{row['expected_cost_before']} → {row['expected_cost_after']}; this month {row['month_spent']} "
                f"spent, {row['projected_month_spend']} projected"
                + (f" of {row['monthly_cap']} (reached on {row['cap_reached_on']})" if row["cap_reached_on"] else "")
            )
    if result["warnings"]:
        lines += ["", "Warnings:", *(f"  - {warning}" for warning in result["warnings"])]
    for example in result["examples"][:5]:
        lines += ["", f"Incident {example['incident']}:"]
        for side in ("before", "after"):
            options = example[side] or [{"label": "-", "title": "no options", "policy": "", "estimated_cost": ""}]
            for option in options:
                lines.append(
                    f"  {side:<6} {option['label']}  {option['title']}"
                    + (f"  ({option['policy']}, costs {option['estimated_cost']})" if option["policy"] else "")
                )
    return "\n".join(lines)
