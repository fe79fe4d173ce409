"""``manage.py load_demo``: the demo policy pack, demo users and their tokens."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from compensation.services.demo_history import HistoryLoaded, demo_history_load
from compensation.services.users import user_token_issue
from policies.packs import PackError, pack_import, pack_load

DEMO_USERS = [("demo-agent", "agent"), ("demo-manager", "manager"), ("demo-analyst", "analyst")]


class Command(BaseCommand):
    help = (
        "Load the demo policy pack and create demo users (an agent, a manager, an analyst, and an admin "
        "for the Django admin), printing their credentials."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--pack", default=str(Path(settings.BASE_DIR) / "fixtures" / "demo_pack.yaml"), help="pack to load"
        )
        parser.add_argument("--no-users", action="store_true", help="load the pack only (and so no history)")
        parser.add_argument(
            "--no-history", action="store_true", help="skip the 30 days of demo history (loaded once, on the first run)"
        )

    def handle(self, *args: Any, pack: str, no_users: bool, no_history: bool, **options: Any) -> None:
        try:
            result = pack_import(document=pack_load(pack), source=pack)
        except PackError as exc:
            raise CommandError("demo pack not loaded:\n" + "\n".join(exc.errors)) from None
        self.stderr.write(result.summary())
        if no_users:
            return

        lines = ["", "Demo API tokens (Authorization: Token <key>):"]
        for username, role in DEMO_USERS:
            user, token, _ = user_token_issue(username=username, role=role)
            if not user.email:  # so the console shows the e-mails managers get
                user.email = f"{username}@localhost"
                user.save(update_fields=["email"])
            lines.append(f"  {role:<8} {username:<14} {token.key}")
        if not no_history:  # the demo agent's and manager's work: without the users (--no-users), none
            self.stderr.write(self.history().summary())

        password = os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user_model = get_user_model()
        admin, _ = user_model.objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        lines.append(f"Django admin: /admin/  user admin  password {password}")
        lines.append("")
        self.stdout.write("\n".join(lines))

    def history(self) -> HistoryLoaded:
        users = (
            get_user_model().objects.filter(username__in=["demo-agent", "demo-manager"]).in_bulk(field_name="username")
        )
        return demo_history_load(agent=users["demo-agent"], manager=users["demo-manager"], now=timezone.now())
