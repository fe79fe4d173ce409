"""Run beat's periodic tasks once in this process: for deployments without beat, and `make run` without Redis."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compensation import tasks

logger = logging.getLogger("compensation")

PERIODIC = {
    "outcome_submissions_requeue": tasks.outcome_submissions_requeue,
    "follow_ups_send": tasks.follow_ups_send,
    "escalations_flag_overdue": tasks.escalations_flag_overdue,
    "idempotency_records_purge": tasks.idempotency_records_purge,
    "budget_alerts_send": tasks.budget_alerts_send,
    "simulations_purge": tasks.simulations_purge,
    "events_resume": tasks.events_resume,
}


class Command(BaseCommand):
    help = (
        "Run the periodic tasks (requeue outcomes, send follow-ups, flag overdue escalations, purge idempotency "
        "records, send budget alerts, take up operational events nobody is processing) once, or --every N s."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=int, default=0, help="repeat every N seconds until stopped")

    def handle(self, *args: Any, every: int, **options: Any) -> None:
        if every < 0:
            raise CommandError("--every must be 0 or more")
        while True:
            for name, task in PERIODIC.items():
                try:
                    done = task.run()
                except Exception:
                    logger.exception("periodic task %s failed", name)
                else:
                    if done:
                        logger.info("%s: %s", name, done)
            if not every:
                return
            time.sleep(every)
