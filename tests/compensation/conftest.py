"""Fixtures the run-time tests share."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

DEMO_PACK = Path(settings.BASE_DIR) / "fixtures" / "demo_pack.yaml"


@pytest.fixture
def demo_pack(db: None) -> None:
    """The demo policy pack, imported as ``import_policies`` does."""
    call_command("import_policies", str(DEMO_PACK), stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def now() -> datetime:
    return timezone.now()
