"""Browser middleware (recovery_project/middleware.py): skipped for token API calls, kept for everything
else. A session without a token still needs the CSRF token to change anything, in the API and the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import RequestFactory
from rest_framework.test import APIClient

from compensation.models import OfferSet
from recovery_project.middleware import token_api_request

pytestmark = pytest.mark.django_db

NEW_SET = {"customer": {"external_id": "C-1"}, "incident": {"category": "late_delivery", "severity": 3}}


@pytest.fixture
def agent_user(make_user: Any) -> tuple[Any, str]:
    return make_user("agent-1", "agent")


@pytest.fixture
def session_client(agent_user: tuple[Any, str]) -> APIClient:
    """A browser: logged in with a session cookie, no token, and CSRF checked as in production."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(agent_user[0])
    return client


@pytest.mark.usefixtures("demo_pack")
def test_a_session_without_a_token_must_send_the_csrf_token_to_post(session_client: APIClient) -> None:
    refused = session_client.post("/api/v1/offer-sets/", NEW_SET, format="json")

    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("CSRF Failed")
    assert not OfferSet.objects.exists()

    # The browsable API hands the browser its CSRF cookie; sent back in the header, the post goes through.
    page = session_client.get("/api/v1/me/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    csrf_token = session_client.cookies["csrftoken"].value
    accepted = session_client.post("/api/v1/offer-sets/", NEW_SET, format="json", HTTP_X_CSRFTOKEN=csrf_token)
    assert accepted.status_code == 201, accepted.content


def test_the_admin_refuses_a_post_without_the_csrf_token() -> None:
    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(admin)

    response = client.post("/admin/auth/group/add/", {"name": "editors"})

    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert not Group.objects.filter(name="editors").exists()


@pytest.mark.usefixtures("demo_pack")
def test_a_token_call_skips_the_browser_middleware_even_with_a_session_cookie(
    session_client: APIClient, agent_user: tuple[Any, str]
) -> None:
    # The same browser sends its session cookie along; the token decides, so no CSRF token is needed.
    session_client.credentials(HTTP_AUTHORIZATION=f"Token {agent_user[1]}")

    response = session_client.post("/api/v1/offer-sets/", NEW_SET, format="json")

    assert response.status_code == 201, response.content
    assert not hasattr(response.wsgi_request, "session")  # the session was never loaded
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies
    assert "X-Frame-Options" not in response


def test_a_session_call_gets_the_browser_middleware(session_client: APIClient) -> None:
    response = session_client.get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json() == {"username": "agent-1", "role": "agent"}
    assert hasattr(response.wsgi_request, "session")
    assert "Cookie" in response["Vary"]
    assert response["X-Frame-Options"] == "DENY"


def test_a_session_with_a_bad_token_is_401_as_drf_never_falls_back_to_the_session(
    session_client: APIClient,
) -> None:
    session_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")

    response = session_client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_the_browsable_api_renders_for_a_token_call(client_for: Any) -> None:
    response = client_for("manager", "manager-1").get("/api/v1/me/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"manager-1" in response.content


@pytest.mark.parametrize(
    ("path", "authorization", "skipped"),
    [
        ("/api/v1/me/", "Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", True),
        ("/api/v1/offer-sets/", "token abc", True),  # DRF compares the keyword without case
        ("/api/v1/me/", "Token", True),  # DRF answers 401 without looking at the session
        ("/api/v1/me/", "Bearer abc", False),
        ("/api/v1/me/", "Tokenabc", False),
        ("/api/v1/me/", "Token\xa0abc", False),  # DRF splits on ASCII whitespace only: no token scheme to it
        ("/api/v1/me/", None, False),
        ("/api/v1/me/", "", False),
        ("/admin/", "Token abc", False),
        ("/apiary/", "Token abc", False),
    ],
)
def test_which_calls_skip_the_browser_middleware(path: str, authorization: str | None, skipped: bool) -> None:
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    assert token_api_request(RequestFactory().get(path, **headers)) is skipped
