"""``manage.py set_authority_limit GROUP --per-option AMOUNT [--per-month AMOUNT]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compensation.errors import InvalidInput
from compensation.roles import Role
from compensation.services.authority import KEEP, authority_amount_parse, authority_limit_set


class Command(BaseCommand):
    help = (
        "Set how much agents in GROUP may give without a manager's approval: per option and, optionally, in a "
        "calendar month (creates the group if missing). An agent's limit is the highest of their groups'; "
        "AMOUNT is money such as 250.00, or 'none' for no limit of this group's own. --per-month left out "
        "keeps the group's stored monthly limit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("group", help="the group's name")
        parser.add_argument(
            "--per-option", required=True, metavar="AMOUNT", help="the most one chosen option may cost, or none"
        )
        parser.add_argument(
            "--per-month",
            metavar="AMOUNT",
            help="the most an agent's chosen options may cost in a calendar month, or none for no monthly limit",
        )

    def handle(self, *args: Any, group: str, per_option: str, per_month: str | None, **options: Any) -> None:
        try:
            result = authority_limit_set(
                group_name=group,
                per_option=authority_amount_parse(per_option, field="--per-option"),
                per_month=KEEP if per_month is None else authority_amount_parse(per_month, field="--per-month"),
            )
        except InvalidInput as exc:
            problems = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.errors.items())
            raise CommandError(f"{problems} (nothing was changed)") from None
        self.stdout.write(result.summary())
        if result.group.name == Role.MANAGER:
            self.stderr.write("note: managers never need approval, so the manager group's limit holds back no one")
