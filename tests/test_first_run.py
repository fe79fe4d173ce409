"""The first run: the start page, the API's root, the demo password kept across runs, e-mailed links on the
served port, and `make run`'s box (scripts/run.sh)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import resolve
from rest_framework.authtoken.models import Token

from recovery_project import env
from tests.conftest import need

ROOT = Path(__file__).resolve().parent.parent
PASSWORD_CHARS = re.compile(r"^[A-Za-z0-9_-]{16}$")  # secrets.token_urlsafe(12)


# --- The start page and the API's root ----------------------------------------------------------


@pytest.mark.django_db
def test_the_start_page_links_the_console_the_admin_the_api_docs_and_the_dashboard() -> None:
    response = Client().get("/")

    assert response.status_code == 200
    page = response.content.decode()
    for href in ('href="/console/"', 'href="/admin/"', 'href="/api/docs/"', 'href="/admin/dashboard/"'):
        assert href in page, href


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [None, "Token 0123456789abcdef0123456789abcdef01234567"])
def test_the_api_root_is_json_anyone_may_read_naming_the_docs_and_every_group(authorization: str | None) -> None:
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = Client().get("/api/v1/", HTTP_ACCEPT="application/json", **headers)

    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    root = response.json()
    assert root["docs"] == "http://testserver/api/docs/"
    assert root["schema"] == "http://testserver/api/schema/"
    assert root["redoc"] == "http://testserver/api/redoc/"
    endpoints = root["endpoints"]
    assert endpoints["me"] == "http://testserver/api/v1/me/"
    assert endpoints["offer_sets"] == "http://testserver/api/v1/offer-sets/"
    assert endpoints["offer_set"] == "http://testserver/api/v1/offer-sets/{offer_set_id}/"
    assert endpoints["escalations"] == "http://testserver/api/v1/escalations/"
    assert endpoints["outcomes"] == "http://testserver/api/v1/outcomes/"
    assert endpoints["customer"] == "http://testserver/api/v1/customers/{external_id}/"
    assert endpoints["simulations"] == "http://testserver/api/v1/simulations/"
    assert endpoints["events"] == "http://testserver/api/v1/events/"
    assert endpoints["event_customers"] == "http://testserver/api/v1/events/{event_id}/customers/"
    assert endpoints["reports"]["summary"] == "http://testserver/api/v1/reports/summary/"


@pytest.mark.django_db
def test_every_url_of_the_api_root_leads_to_an_endpoint() -> None:
    """Each URL, its "{…}" filled with a value of the right shape, resolves to a view of the API, not to a 404."""
    filled = {
        "{offer_set_id}": "6f1c2b9e-0d4a-4c57-9b8e-2a1d5f3c7e90",
        "{simulation_id}": "6f1c2b9e-0d4a-4c57-9b8e-2a1d5f3c7e90",
        "{escalation_id}": "7",
        "{event_id}": "3",
        "{external_id}": "C-1",
        "{token}": "abc",
    }
    root = Client().get("/api/v1/", HTTP_ACCEPT="application/json").json()
    urls = [url for url in root["endpoints"].values() if isinstance(url, str)]
    urls += list(root["endpoints"]["reports"].values())

    reached = set()
    for url in urls:
        path = url.removeprefix("http://testserver")
        for placeholder, value in filled.items():
            path = path.replace(placeholder, value)
        reached.add(resolve(path).view_name)

    assert len(reached) == len(urls) == 21
    assert reached == {
        "compensation:me",
        "compensation:offer-set-list",
        "compensation:offer-set-detail",
        "compensation:escalation-list",
        "compensation:escalation-detail",
        "compensation:customer-detail",
        "compensation:customer-bulk",
        "compensation:simulation-start",
        "compensation:simulation-detail",
        "compensation:feedback",
        "compensation:event-list",
        "compensation:event-detail",
        "compensation:event-customers",
        "compensation:event-cancel",
        "reporting:outcome-list",
        "reporting:report-summary",
        "reporting:report-policies",
        "reporting:report-offer-kinds",
        "reporting:report-categories",
        "reporting:report-agents",
        "reporting:report-learning",
    }


@pytest.mark.django_db
def test_api_redirects_to_the_api_root() -> None:
    response = Client().get("/api/")

    assert response.status_code == 302
    assert response["Location"] == "/api/v1/"


def test_the_api_roots_page_in_a_browser_is_titled_for_a_reader() -> None:
    page = Client().get("/api/v1/", HTTP_ACCEPT="text/html").content.decode()

    assert "<title>Recovery API" in page
    assert "Api Root" not in page
    assert "``" not in page  # the docstring shown on the page is prose, not reStructuredText


@pytest.mark.django_db
def test_an_analyst_at_the_console_is_told_where_the_reports_are(make_user: Any) -> None:
    user, _ = make_user("analyst-1", "analyst")
    client = Client()
    client.force_login(user)

    response = client.get("/console/")

    assert response.status_code == 403
    assert "/api/v1/reports/summary/" in response.content.decode()


def test_the_api_root_is_not_an_operation_of_the_schema() -> None:
    """The schema documents operations; the root only points at them (and the fuzzing covers the schema's)."""
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]

    assert "/api/v1/" not in paths
    assert "/api/v1/me/" in paths


# --- PUBLIC_BASE_URL ------------------------------------------------------------------------------


def test_public_base_url_follows_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("PORT", "18123")
    assert env.public_base_url("PUBLIC_BASE_URL", port_name="PORT") == "http://127.0.0.1:18123"

    monkeypatch.delenv("PORT")
    assert env.public_base_url("PUBLIC_BASE_URL", port_name="PORT") == "http://127.0.0.1:8000"

    monkeypatch.setenv("PORT", "18123")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://recovery.example.com/")
    assert env.public_base_url("PUBLIC_BASE_URL", port_name="PORT") == "https://recovery.example.com"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"PORT": "eighty"}, "PORT: 'eighty' is not an integer"),
        ({"PORT": "70000"}, "PORT: must be at most 65535"),
        ({"PUBLIC_BASE_URL": "recovery.example.com"}, "PUBLIC_BASE_URL: 'recovery.example.com' is not an http://"),
    ],
)
def test_a_bad_port_or_public_base_url_is_named(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(env.ConfigError, match=re.escape(message)):
        env.public_base_url("PUBLIC_BASE_URL", port_name="PORT")


def test_the_settings_take_public_base_url_from_port() -> None:
    """The production settings, loaded in a fresh process with PORT and without PUBLIC_BASE_URL."""
    clean = {k: v for k, v in os.environ.items() if k not in {"PUBLIC_BASE_URL", "DATABASE_URL", "REDIS_URL"}}
    clean.update(DEBUG="1", PORT="18177", DJANGO_SETTINGS_MODULE="recovery_project.settings")
    code = "import django; django.setup(); from django.conf import settings; print(settings.PUBLIC_BASE_URL)"

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://127.0.0.1:18177"


def test_start_warnings_off_keeps_a_process_quiet_about_them() -> None:
    """What `make run` sets for the processes it starts: the box says the warnings once instead."""
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "REDIS_URL", "DATABASE_URL"}}
    clean.update(DEBUG="1", DJANGO_SETTINGS_MODULE="recovery_project.settings")
    code = "import django; django.setup()"

    said = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)
    quiet = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, "START_WARNINGS": "0"}, capture_output=True, text=True
    )

    assert said.returncode == quiet.returncode == 0, (said.stderr, quiet.stderr)
    assert said.stderr.count("REDIS_URL is not set") == said.stderr.count("SECRET_KEY is not set") == 1
    assert "is not set" not in quiet.stderr, quiet.stderr


# --- load_demo's password -------------------------------------------------------------------------


def load_demo(*arguments: str) -> str:
    out = io.StringIO()
    call_command("load_demo", "--no-history", *arguments, stdout=out, stderr=io.StringIO())  # passwords only
    return out.getvalue()


def console_login(username: str, password: str) -> bool:
    """A browser's login at /console/login/ (its form, then the POST with the CSRF token)."""
    browser = Client(enforce_csrf_checks=True)
    browser.get("/console/login/")
    browser.post(
        "/console/login/",
        {"username": username, "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"].value},
    )
    return browser.get("/console/").status_code == 200


@pytest.fixture
def password_file(tmp_path: Path, settings: Any) -> Path:
    settings.DEMO_ADMIN_PASSWORD = None
    settings.DEMO_PASSWORD_FILE = tmp_path / "demo-password"
    return settings.DEMO_PASSWORD_FILE


@pytest.mark.django_db
def test_load_demo_keeps_the_password_across_runs_in_a_file_only_its_owner_reads(password_file: Path) -> None:
    first = load_demo()
    password = password_file.read_text().strip()
    second = load_demo()

    assert PASSWORD_CHARS.match(password), password
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert f"password {password}" in first
    assert f"password {password}" in second
    assert password_file.read_text().strip() == password
    assert get_user_model().objects.get(username="admin").check_password(password)


@pytest.mark.django_db
def test_demo_admin_password_overrides_the_kept_one_and_leaves_the_file_alone(
    password_file: Path, settings: Any
) -> None:
    password_file.write_text("kept-password-1\n")
    settings.DEMO_ADMIN_PASSWORD = "from-the-environment-2"

    output = load_demo()

    assert "password from-the-environment-2" in output
    assert password_file.read_text() == "kept-password-1\n"
    users = get_user_model().objects.filter(username__in=["admin", "demo-agent", "demo-manager", "demo-analyst"])
    assert len(users) == 4
    assert all(user.check_password("from-the-environment-2") for user in users)


@pytest.mark.django_db
def test_an_empty_password_file_gets_a_new_password(password_file: Path) -> None:
    password_file.write_text("\n")

    load_demo()

    assert PASSWORD_CHARS.match(password_file.read_text().strip())
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600


@pytest.mark.django_db
def test_the_demo_agent_and_manager_log_in_to_the_console_with_the_admin_password(password_file: Path) -> None:
    load_demo()
    password = password_file.read_text().strip()

    assert console_login("demo-agent", password)
    assert console_login("demo-manager", password)
    assert not console_login("demo-agent", "not-the-password")


@pytest.mark.django_db
def test_load_demo_resets_a_demo_users_changed_password(password_file: Path) -> None:
    """Documented: the demo users' password is the demo password again after every run."""
    load_demo()
    agent = get_user_model().objects.get(username="demo-agent")
    agent.set_password("changed-by-hand-3")
    agent.save()

    load_demo()

    agent.refresh_from_db()
    assert agent.check_password(password_file.read_text().strip())


@pytest.mark.django_db
def test_load_demo_json_writes_the_credentials_and_the_warnings(password_file: Path, tmp_path: Path) -> None:
    written = tmp_path / "demo.json"

    output = load_demo("--json", str(written))

    demo = json.loads(written.read_text())
    password = password_file.read_text().strip()
    assert output == ""  # the credentials go to the file alone
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert demo["admin"] == {"username": "admin", "password": password}
    assert demo["password_source"] == str(password_file)
    tokens = {user["username"]: (user["role"], user["token"]) for user in demo["users"]}
    assert tokens == {
        username: (role, Token.objects.get(user__username=username).key)
        for username, role in [("demo-agent", "agent"), ("demo-manager", "manager"), ("demo-analyst", "analyst")]
    }
    # The test settings run tasks eagerly (no REDIS_URL warning's condition differs) and set a SECRET_KEY.
    assert any(warning.startswith("REDIS_URL is not set") for warning in demo["warnings"])
    assert not any(warning.startswith("SECRET_KEY is not set") for warning in demo["warnings"])


# --- make run's box -------------------------------------------------------------------------------


def box_script() -> Any:
    spec = importlib.util.spec_from_file_location("first_run_box", ROOT / "scripts" / "first_run_box.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_box_frames_every_line_and_wraps_a_long_warning() -> None:
    demo = {
        "users": [{"username": "demo-agent", "role": "agent", "token": "a" * 40}],
        "admin": {"username": "admin", "password": "pw-1"},
        "password_source": "/somewhere/.demo-admin-password",
        "warnings": ["spam " * 60],
    }
    script = box_script()

    box = script.framed(script.box_lines("http://127.0.0.1:18111", demo, "eager")).splitlines()

    assert len({len(line) for line in box}) == 1  # a rectangle
    assert max(len(line) for line in box) <= 82  # at most 78 inside, and the frame
    assert box[0] == box[-1] == "+" + "-" * (len(box[0]) - 2) + "+"
    warning = [line for line in box if "spam" in line]
    assert len(warning) == 4
    assert sum(line.count("spam") for line in warning) == 60


def test_a_celery_worker_and_beat_say_they_started_in_process_ready_dir(tmp_path: Path, settings: Any) -> None:
    from celery import signals

    settings.PROCESS_READY_DIR = str(tmp_path)

    signals.worker_ready.send(sender=None)
    signals.beat_init.send(sender=None)

    assert sorted(path.name for path in tmp_path.iterdir()) == ["beat", "worker"]


def terminal_signals() -> None:
    for number in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(number, signal.SIG_DFL)


def group_left(group: int, seconds: float) -> str:
    """The processes of the group still alive (not zombies) after up to ``seconds``, as ps lists them."""
    deadline = time.monotonic() + seconds
    while True:
        listing = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True, text=True).stdout
        alive = [
            line.strip()
            for line in listing.splitlines()
            if line.split()[1] == str(group) and not line.split()[2].startswith("Z")
        ]
        if not alive or time.monotonic() >= deadline:
            return "\n".join(alive)
        time.sleep(0.1)


def port_between_18100_and_18199() -> int:
    for port in range(18150, 18200):
        with socket.socket() as probe, contextlib.suppress(OSError):
            probe.bind(("127.0.0.1", port))
            return port
    pytest.skip("no free port between 18150 and 18199")


def read_until_box(process: subprocess.Popen, log: Path, deadline: float) -> str:
    """The output so far once the box has closed (its second rule line)."""
    while True:
        text = log.read_text()
        if len(re.findall(r"^\+-+\+$", text, flags=re.MULTILINE)) >= 2:
            return text
        assert process.poll() is None, f"make run ended early:\n{text}"
        assert time.monotonic() < deadline, f"no box within the time:\n{text}"
        time.sleep(0.25)


def test_make_run_ends_with_one_box_on_its_port_with_the_tokens_the_password_and_each_warning_once(
    tmp_path: Path,
) -> None:
    bash = shutil.which("bash")
    need(bash is not None, "bash is not installed: scripts/run.sh cannot run")
    need((ROOT / ".venv" / "bin" / "python").exists(), ".venv/bin/python is missing (make install creates it)")
    need(shutil.which("ps") is not None, "ps is not installed: cannot see which processes outlived Ctrl-C")
    port = port_between_18100_and_18199()
    password_file = tmp_path / "demo-password"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    for name in ("REDIS_URL", "SECRET_KEY", "PUBLIC_BASE_URL", "DEMO_ADMIN_PASSWORD", "DEBUG", "START_WARNINGS"):
        environment.pop(name, None)
    environment.update(
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DEMO_PASSWORD_FILE=str(password_file),
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "run.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(bash), "scripts/run.sh"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal would give it: Ctrl-C reaches all
            # Ctrl-C and its kin as a terminal gives them: a suite started in the background (`cmd &` in a
            # script) runs with SIGINT ignored, and a shell started so can never trap it.
            preexec_fn=terminal_signals,
        )
    try:
        text = read_until_box(process, log, time.monotonic() + 180)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as answer:
            start_page = answer.status
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        try:
            status = process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # say what was left running, and what it wrote
            pytest.fail(f"make run did not stop on Ctrl-C:\n{group_left(process.pid, seconds=0)}\n{log.read_text()}")
        finally:
            leftover = group_left(process.pid, seconds=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    assert start_page == 200
    assert status == 130, log.read_text()  # stopped by its Ctrl-C trap
    assert not leftover, f"processes of make run outlived Ctrl-C: {leftover}\n{log.read_text()}"
    box = text[text.index("+-") :]
    assert box.rstrip().endswith("+")  # the box is the start-up's last word
    urls = re.findall(r"https?://[^\s|]+", box)
    assert {url.removeprefix(f"http://127.0.0.1:{port}") for url in urls} >= {
        "/",
        "/console/",
        "/admin/",
        "/api/docs/",
        "/admin/dashboard/",
    }
    assert all(url.startswith(f"http://127.0.0.1:{port}/") for url in urls), urls
    demo_password = password_file.read_text().strip()
    assert re.search(rf"user\s+admin\s+password {re.escape(demo_password)}\s", box), box
    assert "log in as demo-agent or demo-manager with the admin password" in box
    for role, username in (("agent", "demo-agent"), ("manager", "demo-manager"), ("analyst", "demo-analyst")):
        assert re.search(rf"{role}\s+{username}\s+[0-9a-f]{{40}}\s", box), (role, box)
    # Each warning once in the whole output (in the box), not once per manage.py command.
    assert text.count("REDIS_URL is not set") == 1, text
    assert text.count("SECRET_KEY is not set") == 1, text
    assert text.count("REDIS_URL is not set") == box.count("REDIS_URL is not set")
    assert text.count("+-") == 2  # one box
