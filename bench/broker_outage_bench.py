"""What a broker outage costs an outcome submission: ``POST .../outcome/`` with the broker down and up.

Two gunicorn servers (one sync worker each unless ``--workers``, DEBUG off) on
one fresh PostgreSQL database (bench/setup.py) and one Redis (the cache, and
the up server's broker); the down server publishes to a closed local port
(``CELERY_BROKER_URL``), so each commit's publish fails and the submission
waits in the outbox for the requeue. One client sends the requests one at a
time, alternating between the servers (each answers sets nobody answered), and
times each from connect to the last byte: p50, p95 and max per server and
their ratio, beside the configured ``socket_connect_timeout`` (what bounds a
broker that does not answer at all; a closed port refuses at once). No worker
runs: the up server's tasks wait in Redis and are purged at the end.

This is where the tests' old "a request returns within the connect timeout"
lives now: figures printed, never asserted.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench import outcomes_bench
from bench.offer_sets_bench import start_gunicorn, stop
from bench.plumbing_bench import _free_port
from bench.reports_bench import _nearest_rank

WARM_UP = 10  # requests per server before the timed ones: connections, the broker pool, first imports
ENQUEUE_FAILED = "could not enqueue"  # what compensation.queue.task_send logs when the publish fails


def _post(url: str, token: str) -> tuple[float, int, dict]:
    """Milliseconds from connect to the whole answer, its status and its JSON."""
    request = urllib.request.Request(  # noqa: S310 - our server
        url,
        data=b'{"choice": "a"}',
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - our server
            body, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    elapsed = (time.perf_counter() - started) * 1000
    try:
        data = json.loads(body)
    except ValueError:
        data = {"body": body[:200].decode(errors="replace")}
    return elapsed, status, data


def run(*, requests: int, workers: int | None = None, out=sys.stdout) -> None:
    from django.conf import settings
    from django.db import connections as db_connections

    from compensation.models import OutcomeSubmission
    from compensation.services.users import user_token_issue
    from recovery_project.celery import app as celery_app

    if not settings.REDIS_URL:
        raise SystemExit("bench: the broker-outage benchmark needs REDIS_URL (the broker when it is up)")
    workers = workers or 1
    agent, token, _ = user_token_issue(username="bench-agent", role="agent")
    ids = outcomes_bench.seed(agent=agent, count=2 * (WARM_UP + requests), out=out)
    db_connections.close_all()
    celery_app.control.purge()

    labels = ("broker up", "broker down")
    ports = {label: _free_port() for label in labels}
    dead_port = _free_port()  # a port just handed out and closed: nothing listens
    while dead_port in ports.values():
        dead_port = _free_port()
    dead_broker = f"redis://127.0.0.1:{dead_port}/0"
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 30,
        "THROTTLE_USER_RATE": "100000000/min",
        "LOG_LEVEL": "WARNING",  # not ERROR: each failed publish writes its warning, as in production
        "PYTHONWARNINGS": "ignore:No directory at",  # WhiteNoise: no collectstatic in a benchmark
    }
    envs = {"broker up": env, "broker down": {**env, "CELERY_BROKER_URL": dead_broker}}
    samples: dict[str, list[float]] = {label: [] for label in labels}
    answers: dict[str, dict[tuple[int, str], int]] = {label: {} for label in labels}
    servers = {}
    with tempfile.TemporaryDirectory(prefix="recovery-broker-outage-") as logs:
        try:
            for label in labels:
                log = Path(logs) / f"{label.replace(' ', '-')}.log"
                servers[label] = (start_gunicorn(ports[label], envs[label], workers, log=log), ports[label], log)
            sets = iter(ids)
            for n in range(WARM_UP + requests):
                for label in labels:  # alternating: both servers see the same moments of a shared machine
                    url = f"http://127.0.0.1:{servers[label][1]}/api/v1/offer-sets/{next(sets)}/outcome/"
                    elapsed, status, data = _post(url, token.key)
                    key = (status, str(data.get("outcome_status", data.get("code", data))))
                    if n >= WARM_UP:
                        samples[label].append(elapsed)
                        answers[label][key] = answers[label].get(key, 0) + 1
        finally:
            for process, _, _ in servers.values():
                stop(process)
        failed_publishes = servers["broker down"][2].read_text(errors="replace").count(ENQUEUE_FAILED)

    queued = celery_app.control.purge()  # the up server's tasks: no worker will take them
    pending = OutcomeSubmission.objects.filter(status=OutcomeSubmission.Status.PENDING).count()
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    print(
        f"POST /api/v1/offer-sets/{{id}}/outcome/: {requests} timed requests per server after {WARM_UP} warm-up, "
        f"one at a time, alternating; gunicorn {workers} sync worker(s) each, DEBUG off, PostgreSQL, no worker",
        file=out,
    )
    broker = settings.CELERY_BROKER_URL.split("@")[-1]  # no password in the output
    print(f"broker up: {broker}   broker down: {dead_broker} (closed port)", file=out)
    print(
        f"configured: socket_connect_timeout {options.get('socket_connect_timeout')} s, "
        f"max_retries {options.get('max_retries')} (CELERY_BROKER_TRANSPORT_OPTIONS)",
        file=out,
    )
    print(f"{'':<16}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}  answers", file=out)
    figures = {}
    for label in labels:
        ordered = sorted(samples[label])
        figures[label] = [_nearest_rank(ordered, 0.5), _nearest_rank(ordered, 0.95), ordered[-1]]
        seen = ", ".join(f"{count} x {status} {what}" for (status, what), count in sorted(answers[label].items()))
        print(f"{label:<16}" + "".join(f"{value:>10.1f}" for value in figures[label]) + f"  {seen}", file=out)
    up, down = figures["broker up"], figures["broker down"]
    print(f"{'down / up':<16}" + "".join(f"{d / u:>10.2f}" for d, u in zip(down, up, strict=True)), file=out)
    total = WARM_UP + requests
    print(
        f"checks: the down server logged {failed_publishes} failed publishes ({total} requests); "
        f"{queued} tasks reached the real broker ({total} requests to the up server); "
        f"{pending} submissions pending (none recorded: no worker)",
        file=out,
    )
