"""``manage.py import_policies PATH [--replace]``: load a YAML or JSON policy pack."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from policies.packs import PackError, pack_import, pack_load


class Command(BaseCommand):
    help = (
        "Import a policy pack (YAML, or JSON for a .json file; - reads standard input). All-or-nothing: "
        "any invalid entry fails the import with its field path and nothing is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="pack file, or - for standard input")
        parser.add_argument(
            "--replace", action="store_true", help="deactivate active policies that the pack does not name"
        )

    def handle(self, *args: Any, path: str, replace: bool, **options: Any) -> None:
        try:
            document = pack_load("<stdin>", text=sys.stdin.read()) if path == "-" else pack_load(path)
            result = pack_import(document=document, replace=replace, source=path)
        except PackError as exc:
            count = len(exc.errors)
            raise CommandError(
                f"nothing imported: {count} problem{'s' if count != 1 else ''} in {path}\n" + "\n".join(exc.errors)
            ) from None
        self.stdout.write(result.summary())
