"""The suite's clock, movable: ``TEST_CLOCK_SHIFT_DAYS=400 make test`` runs every test as if it were 400 days
later (``.ci/run`` does, after the run on today's clock), so a test that leans on today's date fails now rather
than on the day it expires.

The shift is time-machine's ``travel`` with the clock ticking, started in every pytest process (the
conftest's ``pytest_configure``, so pytest-xdist's workers too) and in every process a test starts that reads
the clock, such as a Celery worker: prefix its ``python -c`` code with ``CLOCK_PRELUDE``. PostgreSQL's own
clock does not move, so the code must take ``now`` from Python, as it does.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

SHIFT_ENV = "TEST_CLOCK_SHIFT_DAYS"
AT_ENV = "TEST_CLOCK_AT"  # or start the clock at an ISO 8601 instant: month ends, New Year's Eve, DST changes
# Set by the first process that moves its clock, read by the ones it starts (pytest-xdist's workers, Celery
# workers): how far ahead of the real clock to run, so a process started minutes later is not minutes behind.
OFFSET_ENV = "TEST_CLOCK_OFFSET_SECONDS"

# Python code that moves the clock of a process a test starts, before anything in it reads the time.
CLOCK_PRELUDE = "import tests.clock; tests.clock.clock_shift_start(); "

_traveller = None


def clock_shift_days() -> int:
    raw = os.environ.get(SHIFT_ENV, "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{SHIFT_ENV} must be a whole number of days, not {raw!r}") from None


def clock_start_at() -> datetime | None:
    """Where the clock starts: the offset a parent process set, else ``TEST_CLOCK_AT``, else
    ``TEST_CLOCK_SHIFT_DAYS`` from now; None for today."""
    offset = os.environ.get(OFFSET_ENV, "").strip()
    if offset:
        return datetime.now(UTC) + timedelta(seconds=float(offset))
    raw = os.environ.get(AT_ENV, "").strip()
    if raw:
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            raise SystemExit(f"{AT_ENV} must be an ISO 8601 date and time, not {raw!r}") from None
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    days = clock_shift_days()
    return datetime.now(UTC) + timedelta(days=days) if days else None


def clock_shift_start() -> None:
    """Move this process's clock (``TEST_CLOCK_AT`` / ``TEST_CLOCK_SHIFT_DAYS``; nothing when both are unset);
    it keeps ticking from there."""
    global _traveller
    if _traveller is not None:
        return
    real_now = datetime.now(UTC)
    at = clock_start_at()
    if at is None:
        return
    import time_machine

    os.environ[OFFSET_ENV] = repr((at - real_now).total_seconds())
    _traveller = time_machine.travel(at, tick=True)
    _traveller.start()
