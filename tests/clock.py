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


def clock_shift_start() -> None:
    """Move this process's clock ``TEST_CLOCK_SHIFT_DAYS`` ahead (nothing when unset or 0); it keeps ticking."""
    global _traveller
    days = clock_shift_days()
    if not days or _traveller is not None:
        return
    import time_machine

    _traveller = time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True)
    _traveller.start()
