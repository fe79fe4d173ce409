"""Benchmarks: ``make bench`` (or ``python -m bench [--policies N]``).

Figures are printed, never asserted: speed is measured here, not in the tests.
Uses a database of its own (see bench/setup.py); set DATABASE_URL to measure
on PostgreSQL and REDIS_URL to read the revision through Redis.
"""

from __future__ import annotations

import argparse

from bench.setup import django_setup


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--policies", type=int, default=1000, help="policies in the synthetic pack (default 1000)")
    args = parser.parse_args()

    url = django_setup()
    from django.conf import settings

    from bench import policies_bench

    print(f"database: {url.split('@')[-1]}   cache: {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}")
    for line in policies_bench.run(policies=args.policies):
        print(line)


if __name__ == "__main__":
    main()
