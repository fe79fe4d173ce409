"""Logging filters named in settings.LOGGING (standard library only: logging is set up before the apps load)."""

from __future__ import annotations

import logging
import re

PROBES = ("GET /healthz ", "GET /readyz ", "HEAD /healthz ", "HEAD /readyz ")
# An event customer's link (/r/{token}/): whoever reads it can choose for the customer, so no log keeps it.
CUSTOMER_LINK = re.compile(r"/r/[^/\s\"?]+")
REDACTED_LINK = "/r/…"


def redact(text: str) -> str:
    """``text`` with every customer link's token replaced by an ellipsis."""
    return CUSTOMER_LINK.sub(REDACTED_LINK, text) if "/r/" in text else text


class QuietProbes(logging.Filter):
    """Drops the development server's line for a probe that answered 2xx: a load balancer or ``make run``'s
    start-up wait polls them, and their lines would bury the requests a person made. A failing probe is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) < 2:
            return True
        request_line, status = str(args[0]), str(args[1])
        return not (request_line.startswith(PROBES) and status.startswith("2"))


class RedactCustomerLinks(logging.Filter):
    """Rewrites a record whose message holds a customer link (``Bad Request: /r/…``, a request line) with the
    token left out; every other record passes as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot format is the handler's to report, not ours
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
