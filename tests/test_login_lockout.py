"""Login lockout (API.md, "Hardening"; django-axes): after 5 failed attempts for one username from one address
within 15 minutes, that pair is locked out for 15 minutes. The review found 30 wrong passwords, then the right one,
logged in. Token authentication is not touched by it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.utils import timezone

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
PASSWORD = "the-right-password-42"
HERE, ELSEWHERE = "198.51.100.10", "198.51.100.20"


@pytest.fixture
def clock() -> Iterator[Any]:
    """A stopped clock the test moves by hand (``clock.shift(timedelta)``)."""
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def admins(db: None) -> None:
    for username in ("admin", "other-admin"):
        get_user_model().objects.create_superuser(username, f"{username}@example.com", PASSWORD)


def login(username: str, password: str, *, address: str = HERE, **headers: str) -> Any:
    """A browser's first visit: the login form, then its POST with the CSRF token."""
    browser = Client(enforce_csrf_checks=True, REMOTE_ADDR=address, **headers)
    browser.get(LOGIN)
    response = browser.post(
        LOGIN,
        {
            "username": username,
            "password": password,
            "next": "/admin/",
            "csrfmiddlewaretoken": browser.cookies["csrftoken"].value,
        },
    )
    response.logged_in = browser.get("/admin/").status_code == 200
    return response


def fail(times: int, username: str = "admin", **kwargs: Any) -> None:
    for _ in range(times):
        response = login(username, "wrong", **kwargs)
        assert response.status_code in {200, 429}
        assert not response.logged_in


def locked_out(response: Any) -> bool:
    if response.status_code != 429:
        return False
    assert "Too many failed logins" in response.content.decode()
    assert not response.logged_in
    return True


def test_five_wrong_passwords_lock_the_right_one_out(admins: None, clock: Any) -> None:
    fail(4)
    assert login("admin", PASSWORD).logged_in  # four are not enough (and success forgets them)

    fail(5)
    response = login("admin", PASSWORD)

    assert locked_out(response)
    page = response.content.decode()
    assert "5 wrong passwords" in page
    assert "15 minutes" in page


def test_the_lockout_lifts_15_minutes_after_the_fifth_failure_and_tries_meanwhile_do_not_extend_it(
    admins: None, clock: Any
) -> None:
    fail(5)
    clock.shift(timedelta(minutes=10))
    assert locked_out(login("admin", PASSWORD))
    fail(3)  # refused while locked out, and not counted
    clock.shift(timedelta(minutes=4, seconds=59))
    assert locked_out(login("admin", PASSWORD))

    clock.shift(timedelta(seconds=2))

    assert login("admin", PASSWORD).logged_in


def test_another_address_and_another_username_are_not_locked_out(admins: None, clock: Any) -> None:
    fail(5)

    assert login("admin", PASSWORD, address=ELSEWHERE).logged_in
    assert login("other-admin", PASSWORD).logged_in
    assert locked_out(login("admin", PASSWORD))


def test_a_right_password_forgets_the_failures_before_it(admins: None, clock: Any) -> None:
    fail(4)
    assert login("admin", PASSWORD).logged_in

    fail(4)

    assert login("admin", PASSWORD).logged_in


def test_failures_further_apart_than_15_minutes_do_not_add_up(admins: None, clock: Any) -> None:
    fail(4)
    clock.shift(timedelta(minutes=15, seconds=1))
    fail(1)

    assert login("admin", PASSWORD).logged_in


def test_a_forwarded_for_header_a_client_wrote_does_not_give_a_fresh_address(admins: None, clock: Any) -> None:
    """NUM_PROXIES=0: the header is ignored, as the rate limits ignore it."""
    for n in range(5):
        fail(1, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")

    assert locked_out(login("admin", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99"))


def test_behind_a_proxy_the_address_it_forwarded_is_the_clients(admins: None, clock: Any) -> None:
    proxy = "10.0.0.2"
    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}):
        for n in range(5):
            fail(1, address=proxy, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, {HERE}")

        assert locked_out(login("admin", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR=HERE))
        assert login("admin", PASSWORD, address=proxy, HTTP_X_FORWARDED_FOR=f"{HERE}, {ELSEWHERE}").logged_in

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {HERE}


def test_api_tokens_are_not_counted_or_locked_out(make_user: Any, clock: Any) -> None:
    user, key = make_user("manager-1", "manager")
    user.set_password(PASSWORD)
    user.is_staff = True
    user.save()
    fail(5, "manager-1")
    assert locked_out(login("manager-1", PASSWORD))
    attempts = list(AccessAttempt.objects.values_list("failures_since_start", flat=True))

    api = Client(REMOTE_ADDR=HERE)
    for _ in range(3):
        assert api.get("/api/v1/me/", HTTP_AUTHORIZATION="Token wrong-token").status_code == 401
    answer = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}")

    assert answer.status_code == 200
    assert answer.json()["username"] == "manager-1"
    assert list(AccessAttempt.objects.values_list("failures_since_start", flat=True)) == attempts
    assert not AccessLog.objects.exists()
