"""Fixtures of the console's tests: logged-in browsers (sessions, not tokens)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def browser_for(make_user: Any) -> Any:
    """A logged-in browser (session, not token) for a new user of the role."""

    def make(role: str, username: str | None = None) -> Client:
        user, _ = make_user(username or f"{role}-console", role)
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make


@pytest.fixture
def agent(browser_for: Any) -> Client:
    return browser_for("agent", "agent-1")
