"""Processor time per request of one checkout, in one process: ``python bench/plumbing_cpu.py ENDPOINT N``.

Run with the checkout to measure as the working folder (its code is imported
from there) and the benchmark's environment (DATABASE_URL, REDIS_URL,
SECRET_KEY, the token in BENCH_TOKEN). Sends N requests through Django's test
client after a warm-up and prints, as JSON, the processor time per request of
this process and of its PostgreSQL backend (read from /proc: the database
runs on this machine), and the wall time. Processor time is what a request
costs whoever else shares the machine; throughput under a noisy neighbour
cannot resolve differences of a few percent, this can.

Not imported by the rest of bench/: a --compare checkout may predate it, so
``plumbing_bench`` runs this file by path in each checkout's folder.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

INTERESTS = ["sports", "cooking", "movies", "music", "books", "gaming", "travel", "fitness", "kids", "coffee"]


def _backend_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> None:
    endpoint, requests = sys.argv[1], int(sys.argv[2])
    sys.path.insert(0, os.getcwd())
    os.environ["DJANGO_SETTINGS_MODULE"] = "recovery_project.settings"
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {os.environ['BENCH_TOKEN']}", HTTP_HOST="127.0.0.1")
    customers, categories = int(os.environ["BENCH_CUSTOMERS"]), int(os.environ["BENCH_CATEGORIES"])
    rng = random.Random(int(os.environ.get("BENCH_SEED", "1")))

    def send() -> None:
        if endpoint == "me":
            response = client.get("/api/v1/me/")
        else:
            c = rng.randrange(customers)
            body = {
                "customer": {"external_id": f"C-{c}", "name": f"Customer {c}", "interests": [rng.choice(INTERESTS)]},
                "incident": {
                    "category": f"cat_{rng.randrange(categories)}",
                    "severity": rng.randint(1, 5),
                    "order_value": f"{rng.randint(0, 400)}.00",
                    "description": "bench",
                },
            }
            response = client.post("/api/v1/offer-sets/", json.dumps(body), content_type="application/json")
        if response.status_code >= 300:
            raise SystemExit(f"{endpoint} answered {response.status_code}: {response.content[:200]!r}")

    for _ in range(max(20, requests // 5)):  # connection, compiled index, prepared statements, caches
        send()
    backend = connection.connection.info.backend_pid
    cpu, database, wall = time.process_time(), _backend_seconds(backend), time.perf_counter()
    for _ in range(requests):
        send()
    print(
        json.dumps(
            {
                "python_ms": (time.process_time() - cpu) / requests * 1000,
                "database_ms": (_backend_seconds(backend) - database) / requests * 1000,
                "wall_ms": (time.perf_counter() - wall) / requests * 1000,
            }
        )
    )


if __name__ == "__main__":
    main()
