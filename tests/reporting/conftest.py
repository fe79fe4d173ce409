"""Fixtures of the report, outcome-list and dashboard tests."""

from __future__ import annotations

import pytest

from tests.reporting.catalog import Catalog, catalog_build


@pytest.fixture
def catalog(db: None) -> Catalog:
    return catalog_build()
