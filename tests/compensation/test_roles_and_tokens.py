from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from compensation.roles import user_role

pytestmark = pytest.mark.django_db


def run_issue_token(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_role_groups_exist_after_migrations():
    assert set(Group.objects.values_list("name", flat=True)) >= {"agent", "manager", "analyst", "integration"}


def test_issue_token_creates_user_in_role_group_and_prints_key_on_last_line():
    out, err = run_issue_token("linda", "--role", "agent")
    user = get_user_model().objects.get(username="linda")
    assert list(user.groups.values_list("name", flat=True)) == ["agent"]
    assert not user.has_usable_password()
    assert out.strip().splitlines()[-1] == Token.objects.get(user=user).key
    assert "created user 'linda'" in err
    assert "linda" not in out  # logs go to standard error only


def test_issue_token_again_returns_the_same_key_and_switches_role():
    first, _ = run_issue_token("sam", "--role", "agent")
    second, err = run_issue_token("sam", "--role", "manager")
    assert first.strip() == second.strip()
    user = get_user_model().objects.get(username="sam")
    assert list(user.groups.values_list("name", flat=True)) == ["manager"]
    assert "updated user" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name!", "--role", "agent"], "username"),
        (["ok", "--role", "boss"], "invalid choice"),
    ],
)
def test_issue_token_rejects_bad_input_and_writes_nothing(args, message):
    with pytest.raises((CommandError, SystemExit)) as excinfo:
        run_issue_token(*args)
    if isinstance(excinfo.value, CommandError):
        assert message in str(excinfo.value)
    assert not get_user_model().objects.exists()


def test_issue_token_requires_a_role():
    with pytest.raises(CommandError, match="--role"):
        run_issue_token("nobody")


@pytest.mark.parametrize("role", ["agent", "manager", "analyst", "integration"])
def test_me_reports_username_and_role(client_for, role):
    response = client_for(role, username=f"{role}-1").get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json() == {"username": f"{role}-1", "role": role}


def test_me_for_superuser_says_superuser(admin_client):
    assert admin_client.get("/api/v1/me/").json() == {"username": "admin", "role": "superuser"}


@pytest.mark.parametrize("header", [None, "Token not-a-real-key", "Bearer abc"])
def test_me_without_valid_token_is_401_json(api_client, header):
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] in {"not_authenticated", "authentication_failed"}
    assert body["detail"]


def test_unknown_api_path_is_json_404(client_for):
    response = client_for("agent").get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_api_keeps_answering_when_the_throttle_cache_is_down(client_for, settings):
    client = client_for("agent")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    response = client.get("/api/v1/me/")
    assert response.status_code == 200


# --- The role comes with the token ------------------------------------------------------------------


def test_me_costs_one_query_that_brings_the_role(client_for, django_assert_num_queries):
    client = client_for("manager", username="manager-1")
    client.get("/api/v1/me/")  # the first request of a process may read more (content types, say)

    with django_assert_num_queries(1):
        response = client.get("/api/v1/me/")

    assert response.json() == {"username": "manager-1", "role": "manager"}


def _admin_sets_groups(admin_client, user, groups: list[Group]) -> None:
    """What an admin does on the user's change page: everything as it was, but these groups."""
    response = admin_client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": user.username,
            "first_name": "",
            "last_name": "",
            "email": "",
            "is_active": "on",
            "groups": [group.pk for group in groups],
            "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
            "last_login_0": "",
            "last_login_1": "",
        },
    )
    assert response.status_code == 302, response.content


def test_the_role_follows_an_admins_change_of_groups_on_the_next_request(client_for, admin_client):
    client = client_for("agent", username="sam")
    sam = get_user_model().objects.get(username="sam")
    assert client.get("/api/v1/me/").json()["role"] == "agent"
    assert client.get("/api/v1/escalations/").status_code == 403

    _admin_sets_groups(admin_client, sam, [Group.objects.get(name="manager")])

    assert client.get("/api/v1/me/").json()["role"] == "manager"
    assert client.get("/api/v1/escalations/").status_code == 200

    _admin_sets_groups(admin_client, sam, [])

    assert client.get("/api/v1/me/").json()["role"] is None
    assert client.get("/api/v1/offer-sets/").status_code == 403


def test_a_user_in_two_role_groups_has_the_stronger_role_and_the_rights_of_both(client_for):
    client = client_for("agent", username="dana")
    get_user_model().objects.get(username="dana").groups.add(Group.objects.get(name="analyst"))

    assert client.get("/api/v1/me/").json()["role"] == "agent"
    assert client.get("/api/v1/offer-sets/").status_code == 200  # an agent's
    assert client.get("/api/v1/reports/summary/").status_code == 200  # an analyst's
    assert client.get("/api/v1/escalations/").status_code == 403  # a manager's


@pytest.mark.parametrize(
    ("flags", "role"),
    [({"is_superuser": True, "is_staff": True}, "superuser"), ({"is_staff": True}, "staff"), ({}, None)],
)
def test_a_token_user_without_a_role_group_is_superuser_staff_or_nothing(api_client, flags, role):
    user = get_user_model().objects.create_user("robin", **flags)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    assert api_client.get("/api/v1/me/").json() == {"username": "robin", "role": role}


def test_an_inactive_users_token_is_refused(client_for):
    client = client_for("agent", username="gone")
    get_user_model().objects.filter(username="gone").update(is_active=False)

    response = client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_token_authentication_gives_the_user_and_token_as_the_orm_reads_them(make_user):
    from compensation.authentication import RoleTokenAuthentication

    user, key = make_user("casey", "analyst")
    user.groups.add(Group.objects.create(name="editors"))  # a group that is no role
    get_user_model().objects.filter(pk=user.pk).update(last_login=user.date_joined, first_name="Casey")

    authenticated, token = RoleTokenAuthentication().authenticate_credentials(key)

    stored = get_user_model().objects.get(pk=user.pk)
    fields = [f.attname for f in get_user_model()._meta.concrete_fields]
    assert [getattr(authenticated, f) for f in fields] == [getattr(stored, f) for f in fields]
    assert authenticated.date_joined.tzinfo is not None  # SQLite hands back naive times; the converters make them aware
    assert isinstance(authenticated.is_active, bool)
    assert (token.key, token.user_id, token.created) == (key, user.pk, Token.objects.get(key=key).created)
    assert token.user is authenticated
    assert authenticated._state.adding is False
    assert user_role(authenticated) == "analyst"


def test_an_unknown_token_is_refused_as_drf_refuses_it(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    response = api_client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}
