"""``manage.py restore_policy SLUG VERSION``: make a policy as one of its versions again, as a new version."""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from policies.models import Policy
from policies.packs import RestoreError, policy_restore


class Command(BaseCommand):
    help = (
        "Restore a policy's content (fields, conditions, budget, remedy, offers) as it was at VERSION, saved as "
        "a new version; every process serves it on its next request. Nothing changes when the policy already "
        "is as that version."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the policy's slug")
        parser.add_argument("version", help="the version number to restore, such as 1 (or v1)")

    def handle(self, *args: Any, slug: str, version: str, **options: Any) -> None:
        match = re.fullmatch(r"[vV]?([0-9]{1,9})", version.strip())
        if match is None:
            raise CommandError(f"VERSION must be a version number such as 1 (or v1), got {version!r}")
        number = int(match.group(1))
        policy = Policy.objects.filter(slug=slug).first()
        if policy is None:
            raise CommandError(f"no policy with slug {slug!r}")
        try:
            restored = policy_restore(policy=policy, number=number)
        except RestoreError as exc:
            raise CommandError("nothing restored: " + "\n".join(exc.errors)) from None
        if restored is None:
            self.stdout.write(f"policy {slug} is already as v{number}; nothing changed")
            return
        lines = "".join(f"\n  {line}" for line in restored.changes)
        self.stdout.write(f"policy {policy.slug}: restored v{number} as v{restored.number}{lines}")
