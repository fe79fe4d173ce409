"""The body limits on the server production runs (gunicorn, sync worker), over a raw socket: a 20 MB multipart
declared in Content-Length is answered 413 while most of it has not even been sent, and a chunked body (which
Django alone would read as empty) is read no further than the limit."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 4096
QUIET = ["--no-control-socket"]  # gunicorn's control socket is one path per user: not shared with other servers
FILE_PART = (
    b'--x\r\nContent-Disposition: form-data; name="attachment"; filename="big.bin"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """gunicorn on this checkout, DEBUG off, DATA_UPLOAD_MAX_MEMORY_SIZE=4096. Nothing it is asked here reaches the
    database (an unmigrated SQLite file)."""
    port = free_port()
    folder = tmp_path_factory.mktemp("gunicorn")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "NUM_PROXIES"}}
    env.update(
        DJANGO_SETTINGS_MODULE="recovery_project.settings",
        DEBUG="0",
        SECRET_KEY="gunicorn-body-test-" + "k" * 40,
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        DATA_UPLOAD_MAX_MEMORY_SIZE=str(LIMIT),
    )
    log = (folder / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "recovery_project.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1", *QUIET],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (folder / "gunicorn.log").read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def exchange(port: int, head: str, body: bytes) -> tuple[int, dict, float]:
    """Send the request head and this much body, then read the answer; its status, JSON body and seconds taken."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head.encode() + b"\r\n" + body)
        received = b""
        while b"\r\n\r\n" not in received or len(received) < received.find(b"\r\n\r\n") + 4 + _length(received):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    elapsed = time.monotonic() - started
    status = int(received.split(b" ", 2)[1])
    return status, json.loads(received.split(b"\r\n\r\n", 1)[1]), elapsed


def _length(received: bytes) -> int:
    for line in received.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def head(path: str, content_type: str, framing: str) -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{framing}\r\nConnection: close\r\n"
    )


def chunks(body: bytes, size: int = 1000) -> bytes:
    framed = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)
    )
    return framed + b"0\r\n\r\n"


def test_a_20_mb_multipart_is_413_before_the_body_is_sent(server: int) -> None:
    """Only 64 KB of the declared 20 MB are ever sent: an answer at all means the server did not wait for them."""
    declared = 20 * 1024 * 1024
    request = head(
        "/api/v1/offer-sets/00000000-0000-0000-0000-000000000000/outcome/",
        "multipart/form-data; boundary=x",
        f"Content-Length: {declared}",
    )

    status, body, elapsed = exchange(server, request, FILE_PART + b"y" * 65536)

    assert (status, body["code"]) == (413, "request_too_large")
    assert elapsed < 5


def test_a_20_mb_multipart_login_form_is_413_before_the_body_is_sent(server: int) -> None:
    """The admin's login: Django's CSRF check reads the form (with a well-formed CSRF cookie it gets that far), so
    without the limit the server waits for all 20 MB and then spools the file to disk."""
    request = head("/admin/login/", "multipart/form-data; boundary=x", f"Content-Length: {20 * 1024 * 1024}")
    request += f"Cookie: csrftoken={'a' * 32}\r\n"

    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server), timeout=10) as connection:
        connection.sendall(request.encode() + b"\r\n" + FILE_PART + b"y" * 65536)
        answer = connection.recv(65536)

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert time.monotonic() - started < 5


def test_a_chunked_body_over_the_limit_is_413(server: int) -> None:
    request = head("/api/v1/offer-sets/", "application/json", "Transfer-Encoding: chunked")

    status, body, _ = exchange(server, request, chunks(b"[" + b"1," * LIMIT + b"1]"))

    assert (status, body["code"]) == (413, "request_too_large")


def test_a_chunked_form_is_415(server: int) -> None:
    request = head("/api/v1/offer-sets/", "application/x-www-form-urlencoded", "Transfer-Encoding: chunked")

    status, body, _ = exchange(server, request, chunks(b"customer=C-1"))

    assert (status, body["code"]) == (415, "unsupported_media_type")


def test_a_chunked_json_body_within_the_limit_goes_on_to_the_view(server: int) -> None:
    """Past the body checks, to authentication: no token, 401 (nothing here needs the database)."""
    request = head("/api/v1/offer-sets/", "application/json", "Transfer-Encoding: chunked")

    status, body, _ = exchange(server, request, chunks(json.dumps({"customer": {"external_id": "C-1"}}).encode()))

    assert (status, body["code"]) == (401, "not_authenticated")


def test_malformed_chunks_are_400(server: int) -> None:
    request = head("/api/v1/offer-sets/", "application/json", "Transfer-Encoding: chunked")

    status, body, _ = exchange(server, request, b"zz\r\n{}\r\n0\r\n\r\n")

    assert (status, body["code"]) == (400, "bad_request")
