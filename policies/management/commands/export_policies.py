"""``manage.py export_policies [PATH]``: write every category, perk and policy as a pack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from policies.serialization import pack_export


def pack_dump(document: dict, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


class Command(BaseCommand):
    help = "Export every category, perk and policy as a pack: YAML, or JSON for a .json PATH or --format json."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", help="file to write; standard output when left out")
        parser.add_argument("--format", choices=["yaml", "json"], help="default: from PATH's extension, else yaml")

    def handle(self, *args: Any, path: str | None, format: str | None, **options: Any) -> None:
        as_json = format == "json" or (format is None and bool(path) and path.lower().endswith(".json"))
        text = pack_dump(pack_export(), as_json=as_json)
        if path is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
        self.stderr.write(f"exported to {path}")
