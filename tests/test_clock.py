"""tests/clock.py, which moves the suite's clock for CI's second run (TEST_CLOCK_SHIFT_DAYS, TEST_CLOCK_AT)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from time_machine import TimeMachineFixture

from tests.clock import AT_ENV, CLOCK_PRELUDE, OFFSET_ENV, SHIFT_ENV, clock_start_at

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def unset(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(AT_ENV, raising=False)
    monkeypatch.delenv(SHIFT_ENV, raising=False)
    monkeypatch.delenv(OFFSET_ENV, raising=False)
    return monkeypatch


def test_without_either_variable_the_clock_stays(unset: pytest.MonkeyPatch) -> None:
    assert clock_start_at() is None
    unset.setenv(SHIFT_ENV, "0")
    assert clock_start_at() is None


def test_an_instant_without_a_zone_is_utc(unset: pytest.MonkeyPatch) -> None:
    unset.setenv(AT_ENV, "2027-02-28T23:58:00")
    assert clock_start_at() == datetime(2027, 2, 28, 23, 58, tzinfo=UTC)
    unset.setenv(AT_ENV, "2027-02-28T23:58:00+01:00")
    assert clock_start_at() == datetime(2027, 2, 28, 22, 58, tzinfo=UTC)


def test_a_shift_counts_days_from_the_real_clock(unset: pytest.MonkeyPatch, time_machine: TimeMachineFixture) -> None:
    time_machine.move_to(datetime(2026, 1, 1, 12, tzinfo=UTC), tick=False)
    unset.setenv(SHIFT_ENV, "400")
    assert clock_start_at() == datetime(2027, 2, 5, 12, tzinfo=UTC)


@pytest.mark.parametrize(("name", "value"), [(SHIFT_ENV, "a year"), (AT_ENV, "next tuesday")])
def test_a_bad_value_stops_the_run_naming_the_variable(unset: pytest.MonkeyPatch, name: str, value: str) -> None:
    unset.setenv(name, value)
    with pytest.raises(SystemExit, match=name):
        clock_start_at()


def test_the_processes_a_run_starts_keep_its_offset_from_the_real_clock(
    unset: pytest.MonkeyPatch, time_machine: TimeMachineFixture
) -> None:
    """A worker started later runs as far ahead as the run, not from TEST_CLOCK_AT again."""
    time_machine.move_to(datetime(2026, 1, 1, 12, tzinfo=UTC), tick=False)
    unset.setenv(AT_ENV, "2031-07-04T09:00:00")
    unset.setenv(OFFSET_ENV, "86400")
    assert clock_start_at() == datetime(2026, 1, 2, 12, tzinfo=UTC)


def test_a_process_a_test_starts_reads_the_moved_clock(unset: pytest.MonkeyPatch) -> None:
    unset.setenv(AT_ENV, "2031-07-04T09:00:00")
    code = CLOCK_PRELUDE + "import datetime; print(datetime.datetime.now(datetime.UTC).isoformat())"
    command = [sys.executable, "-c", code]
    printed = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60, cwd=ROOT)
    started = datetime.fromisoformat(printed.stdout.strip())
    assert timedelta(0) <= started - datetime(2031, 7, 4, 9, tzinfo=UTC) < timedelta(minutes=5)
