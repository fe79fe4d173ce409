"""The admin's escalation actions (through the same services as the API) and ``run_periodic_tasks``."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from compensation.models import Escalation
from tests.compensation.test_escalations_api import escalation_new

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:compensation_escalation_changelist"


def staff(make_user: Any, role: str) -> Any:
    user, _ = make_user(f"staff-{role}", role)
    user.is_staff = True
    user.is_superuser = role == "manager"  # a manager with the admin; permissions are not the point here
    user.email = f"{role}@example.com"
    user.save()
    return user


def run_action(client: Any, action: str, escalation: Escalation) -> Any:
    return client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [escalation.pk]}, follow=True)


@pytest.mark.parametrize(("action", "status"), [("acknowledge", "acknowledged"), ("resolve", "resolved")])
def test_a_manager_acts_on_an_escalation_from_the_admin(client: Any, make_user: Any, action: str, status: str) -> None:
    user = staff(make_user, "manager")
    client.force_login(user)
    escalation = escalation_new()

    response = run_action(client, action, escalation)

    assert response.status_code == 200
    escalation.refresh_from_db()
    assert escalation.status == status
    assert escalation.assigned_to == user
    if action == "resolve":
        assert "in the admin by staff-manager" in escalation.resolution


def test_an_admin_action_that_does_not_apply_says_why_and_changes_nothing(client: Any, make_user: Any) -> None:
    client.force_login(staff(make_user, "manager"))
    escalation = escalation_new()  # a senior-manager escalation cannot be approved

    response = run_action(client, "approve", escalation)

    assert "Only approval escalations are approved" in response.content.decode()
    escalation.refresh_from_db()
    assert escalation.status == "open"


def test_run_periodic_tasks_flags_overdue_escalations_once(
    make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    staff(make_user, "manager")
    escalation_new(due_in=-timedelta(minutes=5))

    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_periodic_tasks", stdout=io.StringIO(), stderr=io.StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_periodic_tasks", stdout=io.StringIO(), stderr=io.StringIO())

    overdue = [m for m in mail.outbox if m.subject.startswith("OVERDUE")]
    assert len(overdue) == 1
    assert Escalation.objects.get().overdue_notified_at <= timezone.now()


def test_run_periodic_tasks_refuses_a_negative_interval() -> None:
    with pytest.raises(CommandError, match="--every"):
        call_command("run_periodic_tasks", "--every", "-1", stdout=io.StringIO(), stderr=io.StringIO())
