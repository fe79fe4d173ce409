"""Logging filters named in settings.LOGGING (standard library only: logging is set up before the apps load)."""

from __future__ import annotations

import logging

PROBES = ("GET /healthz ", "GET /readyz ", "HEAD /healthz ", "HEAD /readyz ")


class QuietProbes(logging.Filter):
    """Drops the development server's line for a probe that answered 2xx: a load balancer or ``make run``'s
    start-up wait polls them, and their lines would bury the requests a person made. A failing probe is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) < 2:
            return True
        request_line, status = str(args[0]), str(args[1])
        return not (request_line.startswith(PROBES) and status.startswith("2"))
