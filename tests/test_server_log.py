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
