"""``python -m bench events``: an operational event of 10,000 customers over the demo pack, processed by one
real Celery worker.

PostgreSQL and Redis (DATABASE_URL, default the local server, in a fresh ``<name>_bench`` database;
REDIS_URL, default the local server's db 14). The worker is started as production starts it
(``celery -A recovery_project worker``, prefork, concurrency 1), with the file e-mail backend into a
temporary folder and pacing off (``EVENT_EMAILS_PER_MINUTE=0``). Once it answers a ping, the event is
posted through the API (in-process, 10,000 customers a call, the rest through ``/customers/``) and timed
from the answer to its status ``sent``: every customer's incident, offer set, remedy and e-mail. Prints
customers per second, the seconds against the issue's target (10,000 in under 5 minutes) and the worker's
peak memory (VmHWM of each of its processes, sampled while it works, beside their size when idle).
Figures are printed, never asserted.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATEGORY = "missed_delivery"
TARGET_CUSTOMERS, TARGET_SECONDS = 10_000, 300.0
PER_CALL = 10_000  # the API's most customers in one call
TIERS = ("standard", "standard", "silver", "gold", "platinum")
INTERESTS = ((), ("sports",), ("cooking",), ("music", "reading"), ("gaming",))
SEPARATOR = b"-" * 79  # what the file e-mail backend writes after each message


def customers_of(count: int, *, start: int = 0) -> list[dict[str, object]]:
    """``count`` affected customers, varied as real ones are (tiers, lifetime values, interests, orders)."""
    return [
        {
            "external_id": f"EVB-{n:06d}",
            "name": f"Customer {n}",
            "email": f"customer{n}@example.com",
            "tier": TIERS[n % len(TIERS)],
            "lifetime_value": f"{(n * 37) % 6000}.00",
            "interests": list(INTERESTS[n % len(INTERESTS)]),
            "order_value": f"{20 + (n * 13) % 180}.00",
            "external_ref": f"ORD-{n:06d}",
        }
        for n in range(start, start + count)
    ]


def mail_recipients(folder: Path) -> Counter[str]:
    """Messages per recipient in the file backend's folder (each file holds one connection's messages,
    each followed by a line of 79 dashes)."""
    recipients: Counter[str] = Counter()
    for path in folder.iterdir():
        for chunk in path.read_bytes().split(b"\n" + SEPARATOR + b"\n"):
            if chunk.strip():
                recipients[message_from_bytes(chunk.lstrip(b"\n"))["To"]] += 1
    return recipients


def status_kib(text: str, field: str) -> int:
    """A ``VmHWM:``/``VmRSS:`` line of /proc/<pid>/status, in KiB (0 if absent: a kernel thread, a zombie)."""
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def group_pids(group: int) -> Iterator[int]:
    """The processes of a process group (the worker and its pool children: it runs in a session of its own)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        if int(fields[2]) == group:
            yield int(entry.name)


def memory_sample(group: int, peaks: dict[int, int], field: str = "VmHWM") -> None:
    """Keep each process's highest ``field`` (KiB) in ``peaks``; sampled over the run, so a pool child
    replaced meanwhile still counts."""
    for pid in group_pids(group):
        try:
            kib = status_kib(Path(f"/proc/{pid}/status").read_text(), field)
        except OSError:
            continue
        peaks[pid] = max(peaks.get(pid, 0), kib)


def worker_start(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "recovery_project", "worker"),
                *("--pool", "prefork", "-c", "1", "-l", "warning", "-Q", "celery"),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def worker_stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def worker_ready(app, process: subprocess.Popen, log: Path, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not app.control.ping(timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench: the worker did not start:\n{log.read_text(errors='replace')[-3000:]}")


def run(*, customers: int, out=sys.stdout) -> None:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections as db_connections
    from rest_framework.test import APIClient

    from compensation.models import Event
    from compensation.services.events import event_figures
    from compensation.services.users import user_token_issue
    from recovery_project.celery import app

    if settings.CELERY_TASK_ALWAYS_EAGER or not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        raise SystemExit("bench: events needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    call_command("import_policies", str(ROOT / "fixtures" / "demo_pack.yaml"), stdout=io.StringIO())
    _, token, _ = user_token_issue(username="bench-manager", role="manager")
    api = APIClient(SERVER_NAME="127.0.0.1")
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    db_connections.close_all()  # the worker's database is this one: no connection of ours in its way

    folder = Path(tempfile.mkdtemp(prefix="recovery-events-bench-"))
    mails, log = folder / "mail", folder / "worker.log"
    mails.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recovery_project.settings",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mails),
        "EVENT_EMAILS_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
    }
    app.control.purge()
    worker = worker_start(env, log)
    peaks: dict[int, int] = {}
    try:
        worker_ready(app, worker, log)
        idle: dict[int, int] = {}
        memory_sample(worker.pid, idle, "VmRSS")

        posted = time.perf_counter()
        first = customers_of(min(customers, PER_CALL))
        answer = api.post(
            "/api/v1/events/",
            {"name": "Bench: the north warehouse missed a day", "category": CATEGORY, "severity": 3,
             "description": "A conveyor failure held back every delivery of the day.", "customers": first},
            format="json",
        )  # fmt: skip
        if answer.status_code != 202:
            raise SystemExit(f"bench: POST /api/v1/events/ answered {answer.status_code}: {answer.content[:500]!r}")
        event_id = answer.json()["id"]
        for start in range(PER_CALL, customers, PER_CALL):
            more = api.post(
                f"/api/v1/events/{event_id}/customers/",
                {"customers": customers_of(min(PER_CALL, customers - start), start=start)},
                format="json",
            )
            if more.status_code != 202:
                raise SystemExit(f"bench: adding customers answered {more.status_code}: {more.content[:500]!r}")
        started = time.perf_counter()
        posting = started - posted
        deadline = started + 30 * 60
        while Event.objects.filter(pk=event_id, status=Event.Status.PROCESSING).exists():
            memory_sample(worker.pid, peaks)
            if worker.poll() is not None or time.perf_counter() > deadline:
                raise SystemExit(f"bench: the event did not finish:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        memory_sample(worker.pid, peaks)
    finally:
        worker_stop(worker)

    figures = event_figures([event_id])[event_id]
    recipients = mail_recipients(mails)
    main = worker.pid
    children = {pid: kib for pid, kib in peaks.items() if pid != main}
    child_peak = max(children.values(), default=0)
    print(
        f"\nan event of {customers:,} customers ({CATEGORY}, the demo pack), one worker (prefork, concurrency 1), "
        f"PostgreSQL and Redis, e-mails to the file backend, pacing off:",
        file=out,
    )
    print(
        f"  posted in {posting:.1f} s ({-(-customers // PER_CALL)} call(s), not timed below); status "
        f"{Event.objects.get(pk=event_id).status}: processed {figures['processed']:,}, emailed "
        f"{figures['emailed']:,}, failed {figures['failed']:,}, no options {figures['no_options']:,}; "
        f"{sum(recipients.values()):,} e-mails written to {len(recipients):,} addresses",
        file=out,
    )
    print(f"  {'':<30}{'customers':>12}{'seconds':>10}{'customers/s':>14}", file=out)
    print(f"  {'this run':<30}{customers:>12,}{seconds:>10.1f}{customers / seconds:>14.1f}", file=out)
    print(
        f"  {'target (the issue)':<30}{TARGET_CUSTOMERS:>12,}{TARGET_SECONDS:>10.0f}"
        f"{TARGET_CUSTOMERS / TARGET_SECONDS:>14.1f}",
        file=out,
    )
    at_rate = TARGET_CUSTOMERS / (customers / seconds)
    print(f"  10,000 customers at this rate: {at_rate:.0f} s ({at_rate / TARGET_SECONDS:.0%} of the target)", file=out)
    print(
        f"  worker memory, peak RSS (VmHWM): pool child {child_peak / 1024:.0f} MiB "
        f"(idle {max((kib for pid, kib in idle.items() if pid != main), default=0) / 1024:.0f} MiB), "
        f"main process {peaks.get(main, 0) / 1024:.0f} MiB (idle {idle.get(main, 0) / 1024:.0f} MiB)",
        file=out,
    )
