"""``manage.py issue_token USERNAME --role agent|manager|analyst|integration``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from compensation.roles import Role
from compensation.services.users import user_token_issue


class Command(BaseCommand):
    help = (
        "Create the user if missing, put it in the role's group, and print its API token "
        "(the key alone on the last line of standard output)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values, help="the user's role")

    def handle(self, *args: Any, username: str, role: str, **options: Any) -> None:
        try:
            user, token, created = user_token_issue(username=username, role=role)
        except ValidationError as exc:
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(problems) from None
        self.stderr.write(f"{'created' if created else 'updated'} user {user.get_username()!r} with role {role}")
        self.stdout.write(token.key)
