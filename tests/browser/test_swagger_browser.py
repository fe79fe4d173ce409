"""Swagger UI in a real browser, the demo pack loaded: "Try it out" on POST /api/v1/offer-sets/ starts from
the schema's first example (a late delivery for a gold customer), and executed as given, with an agent's
token, it gets a 201 and the customer's options.

Runs Debian's Chromium headless through Playwright's sync API against pytest-django's live server.
Skipped locally when Chromium is missing; fails in CI.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from compensation import schema_examples as examples
from tests.browser.test_admin_browser import chromium_page

OPERATION = "#operations-v1-v1_offer_sets_create"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_try_it_out_creates_an_offer_set_as_given(
    chromium_path: str, live_server: Any, demo_pack: None, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Playwright's sync API runs an event loop in this thread; the ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    _, key = make_user("swagger-agent", "agent")

    with chromium_page(chromium_path) as page:
        page.goto(f"{live_server.url}/api/docs/")
        page.get_by_role("button", name="Authorize").first.click()
        dialog = page.locator(".dialog-ux")
        token_auth = dialog.locator(".auth-container", has_text="tokenAuth")
        token_auth.locator("input").fill(f"Token {key}")
        token_auth.get_by_role("button", name="Apply credentials").click()
        dialog.locator(".close-modal").click()

        operation = page.locator(OPERATION)
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        body = operation.locator("textarea.body-param__text")
        expect(body).to_be_visible()

        assert json.loads(body.input_value()) == examples.OFFER_SET_LATE_DELIVERY_GOLD

        operation.get_by_role("button", name="Execute").click()
        status = operation.locator(".live-responses-table .response .response-col_status").first
        expect(status).to_have_text("201")
        answer = json.loads(operation.locator(".live-responses-table .microlight").first.inner_text())
        assert answer["customer"]["external_id"] == examples.GOLD_CUSTOMER["external_id"]
        assert [option["label"] for option in answer["options"]] == ["a", "b", "c"]
