"""``manage.py load_demo``: the demo policy pack, demo users and their tokens."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from compensation.apps import start_warnings
from compensation.services.demo_history import HistoryLoaded, demo_history_load
from compensation.services.users import user_token_issue
from policies.packs import PackError, pack_import, pack_load

DEMO_USERS = [("demo-agent", "agent"), ("demo-manager", "manager"), ("demo-analyst", "analyst")]


def demo_password() -> tuple[str, str]:
    """The demo password and where it comes from: ``DEMO_ADMIN_PASSWORD`` when set; else the one kept in
    ``DEMO_PASSWORD_FILE``, which the first run creates (mode 0600) with a random one."""
    if settings.DEMO_ADMIN_PASSWORD:
        return settings.DEMO_ADMIN_PASSWORD, "DEMO_ADMIN_PASSWORD"
    path = Path(settings.DEMO_PASSWORD_FILE)
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kept = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"DEMO_PASSWORD_FILE: cannot read {path} ({exc}); delete it or fix it") from None
    if kept:
        return kept, str(path)
    password = secrets.token_urlsafe(12)
    try:
        path.unlink(missing_ok=True)  # an empty file: write a fresh one, with its mode
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise CommandError(f"DEMO_PASSWORD_FILE: cannot create {path} ({exc})") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(password + "\n")
    return password, str(path)


class Command(BaseCommand):
    help = (
        "Load the demo policy pack and create demo users (an agent, a manager, an analyst, and an admin "
        "for the Django admin), printing their credentials. All four log in with one password: "
        "DEMO_ADMIN_PASSWORD, else the one kept in DEMO_PASSWORD_FILE (set again on every run)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--pack", default=str(Path(settings.BASE_DIR) / "fixtures" / "demo_pack.yaml"), help="pack to load"
        )
        parser.add_argument("--no-users", action="store_true", help="load the pack only (and so no history)")
        parser.add_argument(
            "--no-history", action="store_true", help="skip the 30 days of demo history (loaded once, on the first run)"
        )
        parser.add_argument(
            "--json",
            dest="json_path",
            metavar="PATH",
            help="write the credentials and the start-up warnings to PATH as JSON (mode 0600) instead of "
            "printing the credentials (`make run` shows them in its box)",
        )

    def handle(
        self, *args: Any, pack: str, no_users: bool, no_history: bool, json_path: str | None, **options: Any
    ) -> None:
        try:
            result = pack_import(document=pack_load(pack), source=pack)
        except PackError as exc:
            raise CommandError("demo pack not loaded:\n" + "\n".join(exc.errors)) from None
        self.stderr.write(result.summary())
        if no_users:
            return

        password, password_source = demo_password()
        users = []
        for username, role in DEMO_USERS:
            user, token, _ = user_token_issue(username=username, role=role)
            if not user.email:  # so the console shows the e-mails managers get
                user.email = f"{username}@localhost"
            user.set_password(password)  # the console's login: the demo password, set again on every run
            user.save(update_fields=["email", "password"])
            users.append({"username": username, "role": role, "token": token.key})
        if not no_history:  # the demo agent's and manager's work: without the users (--no-users), none
            self.stderr.write(self.history().summary())

        user_model = get_user_model()
        admin, _ = user_model.objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()

        if json_path is not None:
            self._write_json(
                Path(json_path),
                {
                    "users": users,
                    "admin": {"username": "admin", "password": password},
                    "password_source": password_source,
                    "warnings": start_warnings(),
                },
            )
            return
        lines = ["", "Demo API tokens (Authorization: Token <key>):"]
        lines += [f"  {user['role']:<8} {user['username']:<14} {user['token']}" for user in users]
        lines.append(f"Django admin: /admin/  user admin  password {password}")
        lines.append("Console: /console/  log in as demo-agent or demo-manager with the admin password")
        lines.append("")
        self.stdout.write("\n".join(lines))

    def history(self) -> HistoryLoaded:
        users = (
            get_user_model().objects.filter(username__in=["demo-agent", "demo-manager"]).in_bulk(field_name="username")
        )
        return demo_history_load(agent=users["demo-agent"], manager=users["demo-manager"], now=timezone.now())

    @staticmethod
    def _write_json(path: Path, data: dict[str, Any]) -> None:
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise CommandError(f"--json: cannot write {path} ({exc})") from None
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(json.dumps(data, indent=2) + "\n")
