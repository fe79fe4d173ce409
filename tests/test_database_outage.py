"""A database outage under a real server (API.md v2, "A database outage is a 503, not a 500").

gunicorn serves the test database through a TCP proxy this test owns; closing the proxy (the listener and
every connection through it) is PostgreSQL going away as the server sees it: refused connections and
connections cut mid-use. While it is down every API endpoint answers 503 ``unavailable`` with
``Retry-After`` at once, ``/healthz`` stays 200 and ``/readyz`` is 503 naming the database; once it is back
the first request is served, and outcomes accepted before and after are each recorded once.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from compensation.models import Outcome, OutcomeSubmission
from compensation.services.users import user_token_issue
from tests.clock import CLOCK_PRELUDE
from tests.compensation.test_outcome_worker import database_url_of_this_test, log_tail, worker_stop
from tests.conftest import postgres_needed

pytestmark = pytest.mark.django_db(transaction=True)

# Answered within this or the test fails: a server hanging on a dead database would wait for gunicorn's
# 30 s timeout. Generous, since the machine is shared; "fast" is about not hanging, not about milliseconds.
ANSWER_WITHIN = 10.0


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``down()`` closes everything, ``up()`` listens on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, server))
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()

    def _pipe(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select(timeout=1):
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        peers[key.fileobj].sendall(data)  # type: ignore[index]
            except (OSError, ValueError):
                return
            finally:
                for sock in peers:
                    with contextlib.suppress(OSError):
                        sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    postgres_needed("the test cuts a PostgreSQL server's connections under a gunicorn server")
    db = connection.settings_dict
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    proxy.up()
    try:
        yield proxy
    finally:
        proxy.down()


@pytest.fixture
def server(proxy: TcpProxy, tmp_path: Path) -> Iterator[str]:
    """gunicorn on the test database through the proxy: two workers, as production runs them."""
    port = free_port()
    direct = database_url_of_this_test()
    through_proxy = direct.replace(f":{connection.settings_dict['PORT'] or 5432}/", f":{proxy.port}/", 1)
    assert through_proxy != direct, direct
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": through_proxy,
        "DEBUG": "0",
        "DATABASE_CONNECT_TIMEOUT": "2",
        "WEB_CONCURRENCY": "2",
    }
    log = tmp_path / "gunicorn.log"
    code = CLOCK_PRELUDE + "import sys; from gunicorn.app.wsgiapp import run; sys.exit(run())"
    argv = ["gunicorn", "recovery_project.wsgi", "--bind", f"127.0.0.1:{port}", "--timeout", "30"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", code, *argv[1:]],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while call(base, "GET", "/healthz")[0] != 200:
            assert process.poll() is None, f"gunicorn exited:\n{log_tail(log)}"
            assert time.monotonic() < deadline, f"gunicorn did not start:\n{log_tail(log)}"
            time.sleep(0.2)
        yield base
    finally:
        worker_stop(process)


def call(
    base: str, method: str, path: str, body: Any = None, token: str | None = None, **headers: str
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, parsed JSON or text); status 0 when nothing answered."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)  # noqa: S310 - our own test server
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=ANSWER_WITHIN) as response:  # noqa: S310
            status, answer_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, raw = error.code, dict(error.headers), error.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, {}, None
    try:
        return status, answer_headers, json.loads(raw)
    except ValueError:
        return status, answer_headers, raw.decode(errors="replace")


def set_body(external_id: str) -> dict[str, Any]:
    return {
        "customer": {"external_id": external_id, "name": "Ada Lovelace", "email": "ada@example.com"},
        "incident": {"category": "late_delivery", "severity": 3, "order_value": "80.00"},
    }


def test_an_outage_is_a_quick_503_everywhere_and_service_resumes_on_the_first_request(
    demo_pack: None, proxy: TcpProxy, server: str
) -> None:
    _, agent, _ = user_token_issue(username="agent-outage", role="agent")
    _, manager, _ = user_token_issue(username="manager-outage", role="manager")
    status, _, before_set = call(server, "POST", "/api/v1/offer-sets/", set_body("C-OUT-1"), agent.key)
    assert status == 201, before_set
    status, _, waiting_set = call(server, "POST", "/api/v1/offer-sets/", set_body("C-OUT-2"), agent.key)
    assert status == 201, waiting_set
    before_key = str(uuid.uuid4())
    status, _, body = call(
        server, "POST", f"/api/v1/offer-sets/{before_set['id']}/outcome/", {"choice": "a"}, agent.key,
        Idempotency_Key=before_key,
    )  # fmt: skip
    assert status == 202, body

    proxy.down()
    requests = [
        ("GET", "/api/v1/me/", None, agent.key),
        ("POST", "/api/v1/offer-sets/", set_body("C-OUT-3"), agent.key),
        ("GET", f"/api/v1/offer-sets/{waiting_set['id']}/", None, agent.key),
        ("POST", f"/api/v1/offer-sets/{waiting_set['id']}/outcome/", {"choice": "b"}, agent.key),
        ("GET", "/api/v1/escalations/", None, manager.key),
        ("GET", "/api/v1/reports/summary/", None, manager.key),
        ("GET", "/api/v1/outcomes/", None, manager.key),
        ("GET", "/api/v1/outcomes/?format=csv", None, manager.key),  # a stream: it starts in the view
        ("GET", "/api/v1/reports/policies/", None, manager.key),
        ("GET", "/api/v1/me/", None, "not-a-token-but-the-database-is-asked"),
    ]
    for method, path, body, token in requests:
        started = time.monotonic()
        status, headers, answer = call(server, method, path, body, token)
        took = time.monotonic() - started
        assert status == 503, (method, path, status, answer)
        assert isinstance(answer, dict), answer
        assert answer.get("code") == "unavailable", (method, path, answer)
        assert "database" in answer["detail"], answer
        assert int(headers["Retry-After"]) > 0, headers
        assert took < ANSWER_WITHIN, (method, path, took)
    # The same outcome repeated with its key while the database is down changes nothing either.
    status, _, _ = call(
        server, "POST", f"/api/v1/offer-sets/{before_set['id']}/outcome/", {"choice": "a"}, agent.key,
        Idempotency_Key=before_key,
    )  # fmt: skip
    assert status == 503
    assert call(server, "GET", "/healthz")[0] == 200
    status, _, ready = call(server, "GET", "/readyz")
    assert status == 503, ready
    assert ready["checks"]["database"].startswith("unavailable"), ready
    assert str(proxy.port) not in json.dumps(ready)  # the probe needs no login: no hosts or ports in it

    proxy.up()
    status, _, me = call(server, "GET", "/api/v1/me/", token=agent.key)
    assert status == 200, me  # the first request after the database is back
    status, _, ready = call(server, "GET", "/readyz")
    assert status == 200, ready
    status, _, body = call(
        server, "POST", f"/api/v1/offer-sets/{before_set['id']}/outcome/", {"choice": "a"}, agent.key,
        Idempotency_Key=before_key,
    )  # fmt: skip
    assert status == 202, body  # the repeat gets the first answer back, and records nothing new
    status, _, body = call(
        server, "POST", f"/api/v1/offer-sets/{waiting_set['id']}/outcome/", {"choice": "b"}, agent.key
    )
    assert status == 202, body

    for offer_set, choice in ((before_set, "a"), (waiting_set, "b")):
        assert OutcomeSubmission.objects.filter(offer_set_id=offer_set["id"]).count() == 1
        assert list(Outcome.objects.filter(offer_set_id=offer_set["id"]).values_list("choice", flat=True)) == [choice]
    assert OutcomeSubmission.objects.count() == 2


@pytest.mark.parametrize(("path", "content_type"), [("/api/v1/me/", "application/json"), ("/admin/", "text/plain")])
def test_an_outage_met_outside_a_rest_view_is_a_503_too(rf: Any, path: str, content_type: str) -> None:
    """Django's last resort (handler500), called inside the ``except`` of an error a middleware raised."""
    from django.db import InterfaceError, OperationalError

    from compensation.exceptions import handler500

    for error in (OperationalError("connection refused"), InterfaceError("connection already closed")):
        try:
            raise error
        except (OperationalError, InterfaceError):
            response = handler500(rf.get(path))
        assert response.status_code == 503
        assert response["Content-Type"].startswith(content_type)
        assert int(response["Retry-After"]) > 0
    if content_type == "application/json":
        assert json.loads(response.content)["code"] == "unavailable"
    try:
        raise ValueError("a bug, not an outage")
    except ValueError:
        assert handler500(rf.get(path)).status_code == 500


@pytest.mark.django_db
def test_a_csv_export_whose_database_goes_away_after_the_login_is_a_503(
    manager: Any, demo_pack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export streams, but its query starts in the view, where an outage can still be answered 503
    (it was a 200 whose body then broke, or the server's bare 500)."""
    from django.db import OperationalError

    import reporting.export

    def gone() -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(reporting.export, "report_session", gone)

    response = manager.get("/api/v1/outcomes/?format=csv")

    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert int(response["Retry-After"]) > 0
