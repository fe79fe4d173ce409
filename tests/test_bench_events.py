"""``python -m bench events``' helpers (bench/events_bench.py): its customers, its count of the e-mails the file
backend wrote, and its reading of a process's memory. No timing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.mail import EmailMessage, get_connection

from bench import events_bench as eb
from compensation.serializers import event_customers_validate


def test_the_customers_are_distinct_and_valid_as_the_api_takes_them() -> None:
    rows = eb.customers_of(25, start=10_000)
    assert len({row["external_id"] for row in rows}) == len({row["email"] for row in rows}) == 25
    assert rows[0]["external_id"] == "EVB-010000"
    validated = event_customers_validate({"customers": rows})
    assert len(validated["customers"]) == 25
    assert {row["tier"] for row in rows} == {"standard", "silver", "gold", "platinum"}


def test_the_e_mails_are_counted_per_recipient_as_the_file_backend_wrote_them(tmp_path: Path) -> None:
    backend = "django.core.mail.backends.filebased.EmailBackend"
    one_connection = get_connection(backend, file_path=str(tmp_path))
    one_connection.send_messages(  # two messages in one file
        [EmailMessage("Hello", "Body\n", to=["a@example.com"]), EmailMessage("Hi", "---\n", to=["b@example.com"])]
    )
    get_connection(backend, file_path=str(tmp_path)).send_messages([EmailMessage("Again", "x", to=["a@example.com"])])

    assert eb.mail_recipients(tmp_path) == {"a@example.com": 2, "b@example.com": 1}


def test_a_process_status_line_is_read_in_kib() -> None:
    status = "Name:\tcelery\nVmPeak:\t  500000 kB\nVmHWM:\t  104448 kB\nVmRSS:\t   98304 kB\n"
    assert eb.status_kib(status, "VmHWM") == 104448
    assert eb.status_kib(status, "VmRSS") == 98304
    assert eb.status_kib("Name:\tkthreadd\n", "VmHWM") == 0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_the_memory_of_a_process_group_is_sampled_per_process() -> None:
    group = os.getpgid(0)
    assert os.getpid() in set(eb.group_pids(group))
    peaks: dict[int, int] = {}
    eb.memory_sample(group, peaks)
    assert peaks[os.getpid()] > 0
