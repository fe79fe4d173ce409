"""gunicorn's logger with customer links left out of the access log (gunicorn.conf.py's ``logger_class``)."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from recovery_project.logfilters import redact


class RedactingLogger(Logger):
    """The access log's request line, path and every other value with an event customer's token left out:
    whoever reads a link can choose for the customer."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}
