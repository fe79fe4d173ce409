"""The development server's request log leaves out probes that answered 2xx (make run's start-up wait polls
/healthz; a line after the box would bury it), and keeps every other request, failing probes included."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest


@pytest.fixture
def server_log() -> Iterator[io.StringIO]:
    handler = next(h for h in logging.getLogger("django.server").handlers if isinstance(h, logging.StreamHandler))
    written = io.StringIO()
    stream = handler.setStream(written)
    yield written
    handler.setStream(stream)


@pytest.mark.parametrize(
    ("request_line", "status", "logged"),
    [
        ("GET /healthz HTTP/1.1", "200", False),
        ("GET /readyz HTTP/1.1", "200", False),
        ("HEAD /healthz HTTP/1.1", "200", False),
        ("GET /readyz HTTP/1.1", "503", True),
        ("GET /healthz HTTP/1.1", "500", True),
        ("GET /healthzz HTTP/1.1", "404", True),
        ("GET /console/ HTTP/1.1", "200", True),
        ("POST /api/v1/offer-sets/ HTTP/1.1", "201", True),
    ],
)
def test_probe_lines_that_answered_2xx_are_left_out(
    server_log: io.StringIO, request_line: str, status: str, logged: bool
) -> None:
    logging.getLogger("django.server").info('"%s" %s %s', request_line, status, "16")
    assert (request_line in server_log.getvalue()) is logged


def test_a_line_without_request_arguments_is_kept(server_log: io.StringIO) -> None:
    logging.getLogger("django.server").error("You're accessing the development server over HTTPS")
    assert "development server over HTTPS" in server_log.getvalue()


TOKEN = "0123456789abcdef0123456789abcdef0123456789a"


def test_a_customer_link_never_reaches_the_log(server_log: io.StringIO, caplog: pytest.LogCaptureFixture) -> None:
    """Whoever reads an event customer's link can choose for them: request lines and Django's warnings about
    them keep the path without the token."""
    logging.getLogger("django.server").info('"%s" %s %s', f"POST /r/{TOKEN}/?option=a HTTP/1.1", "409", "812")
    assert TOKEN not in server_log.getvalue()
    assert '"POST /r/…/?option=a HTTP/1.1" 409' in server_log.getvalue()

    stderr = next(h for h in logging.getLogger().handlers if getattr(h, "name", None) == "stderr")
    written = io.StringIO()
    previous = stderr.setStream(written)
    try:
        logging.getLogger("django.request").warning("Bad Request: %s", f"/r/{TOKEN}/")
    finally:
        stderr.setStream(previous)
    assert "Bad Request: /r/…" in written.getvalue()
    assert TOKEN not in written.getvalue()


def test_gunicorn_access_log_leaves_the_token_out() -> None:
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    from recovery_project.gunicorn_logging import RedactingLogger

    logger = RedactingLogger(Config())
    request = SimpleNamespace(
        method="GET", path=f"/r/{TOKEN}/", query="option=b", uri=f"/r/{TOKEN}/?option=b", version=(1, 1), headers=[]
    )
    response = SimpleNamespace(status="200 OK", response_length=1200, sent=1200, headers=[])
    environ = {
        "REMOTE_ADDR": "203.0.113.9",
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/r/{TOKEN}/?option=b",
        "PATH_INFO": f"/r/{TOKEN}/",
        "QUERY_STRING": "option=b",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }

    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=12))
    assert all(TOKEN not in str(value) for value in atoms.values())
    assert atoms["r"] == "GET /r/…/?option=b HTTP/1.1"
