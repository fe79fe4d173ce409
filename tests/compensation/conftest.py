"""Fixtures the run-time tests share."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from tests.compensation.reporting import Catalog, catalog_build

DEMO_PACK = Path(settings.BASE_DIR) / "fixtures" / "demo_pack.yaml"


@pytest.fixture
def demo_pack(db: None) -> None:
    """The demo policy pack, imported as ``import_policies`` does."""
    call_command("import_policies", str(DEMO_PACK), stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def now() -> datetime:
    return timezone.now()


# --- The report and outcome-list tests ----------------------------------------------------------


@pytest.fixture
def catalog(db: None) -> Catalog:
    return catalog_build()


@pytest.fixture
def agent1(client_for: Any) -> Any:
    return client_for("agent", "agent-1")


@pytest.fixture
def agent2(client_for: Any) -> Any:
    return client_for("agent", "agent-2")


@pytest.fixture
def manager(client_for: Any) -> Any:
    return client_for("manager", "manager-1")


@pytest.fixture
def analyst(client_for: Any) -> Any:
    return client_for("analyst", "analyst-1")
