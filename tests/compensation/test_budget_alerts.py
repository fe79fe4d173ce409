"""The 80% e-mail (API.md, "Policy lifecycle"): managers are told once per policy and month when its
spend reaches 80% of its monthly cap (``compensation.services.budgets.budget_alerts_send``, the periodic
task ``compensation.budget_alerts_send``). Every run takes ``now=`` or a frozen clock."""

from __future__ import annotations

import io
import logging
import smtplib
import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core import mail
from django.core.management import call_command
from django.db import connection

from compensation import tasks
from compensation.models import Customer, PolicyMonthSpend
from compensation.services import budgets
from compensation.services.budgets import budget_alerts_send, budget_charge
from policies.models import Policy
from tests.factories import PolicyFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 20, 15, 0, tzinfo=UTC)
APRIL_NOW = datetime(2025, 4, 2, 8, 0, tzinfo=UTC)
MARCH, FEBRUARY, APRIL = date(2025, 3, 1), date(2025, 2, 1), date(2025, 4, 1)


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.TIME_ZONE = "UTC"
    settings.PUBLIC_BASE_URL = "https://recovery.example.com"


@pytest.fixture
def managers(make_user: Any) -> list[str]:
    """Two managers with an address (told), one without, one inactive and an agent (not told)."""
    for username, role, email, active in [
        ("zoe", "manager", "zoe@example.com", True),
        ("ann", "manager", "ann@example.com", True),
        ("bob", "manager", "", True),
        ("old", "manager", "old@example.com", False),
        ("amy", "agent", "amy@example.com", True),
    ]:
        user, _ = make_user(username, role)
        user.email, user.is_active = email, active
        user.save()
    return ["ann@example.com", "zoe@example.com"]


def capped(name: str, cap: str | None, *, month: date = MARCH, spent: str | None = None) -> Policy:
    made = PolicyFactory(name=name, slug=name.lower().replace(" ", "-"), monthly_cap=cap and Decimal(cap))
    if spent is not None:
        spend(made, month, spent)
    return made


def spend(policy: Policy, month: date, spent: str) -> PolicyMonthSpend:
    return PolicyMonthSpend.objects.create(policy=policy, month=month, spent=Decimal(spent), cap=policy.monthly_cap)


def alerted(policy: Policy, month: date = MARCH) -> datetime | None:
    return PolicyMonthSpend.objects.get(policy=policy, month=month).alerted_at


def test_managers_are_told_once_when_the_month_passes_80_percent(managers: list[str]) -> None:
    policy = capped("Late credit", "1000.00", spent="850.00")

    assert budget_alerts_send(now=NOW) == 1
    assert budget_alerts_send(now=NOW) == 0  # a second run sends nothing more

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == managers
    assert message.subject == "Budget: Late credit has spent 85% of its monthly cap (March 2025)"
    body = message.body
    assert 'Policy "Late credit" (late-credit) has spent 85% of its monthly cap for March 2025.' in body
    assert "Spent: 850.00 USD\nCap: 1000.00 USD\nLeft: 150.00 USD\n" in body
    assert "until April 1" in body
    assert f"https://recovery.example.com/admin/policies/policy/{policy.pk}/change/" in body
    assert alerted(policy) == NOW


@pytest.mark.parametrize(
    ("spent", "told"),
    [("0.00", False), ("799.99", False), ("800.00", True), ("1000.00", True)],
    ids=["nothing", "79.99%", "80%", "100%"],
)
def test_the_e_mail_goes_from_80_percent_of_the_cap(managers: list[str], spent: str, told: bool) -> None:
    policy = capped("Late credit", "1000.00", spent=spent)

    assert budget_alerts_send(now=NOW) == int(told)

    assert len(mail.outbox) == int(told)
    assert (alerted(policy) is not None) == told


def test_uncapped_and_zero_cap_policies_are_never_alerted(managers: list[str]) -> None:
    free = capped("Free", None, spent="99999.00")
    off = capped("Off", "0.00", spent="0.00")

    assert budget_alerts_send(now=NOW) == 0

    assert mail.outbox == []
    assert (alerted(free), alerted(off)) == (None, None)


def test_the_cap_as_set_now_decides(managers: list[str]) -> None:
    """Charged under a cap of 2000.00 (45%), the cap since lowered to 1000.00: 90%."""
    policy = capped("Lowered", "2000.00", spent="900.00")
    Policy.objects.filter(pk=policy.pk).update(monthly_cap=Decimal("1000.00"))

    assert budget_alerts_send(now=NOW) == 1

    assert "90%" in mail.outbox[0].subject


def test_each_month_is_told_once_and_a_new_month_again(managers: list[str]) -> None:
    policy = capped("Late credit", "100.00", spent="90.00")
    assert budget_alerts_send(now=NOW) == 1

    spend(policy, APRIL, "81.00")
    assert budget_alerts_send(now=APRIL_NOW) == 1
    assert budget_alerts_send(now=APRIL_NOW) == 0

    assert [m.subject for m in mail.outbox] == [
        "Budget: Late credit has spent 90% of its monthly cap (March 2025)",
        "Budget: Late credit has spent 81% of its monthly cap (April 2025)",
    ]
    assert (alerted(policy, MARCH), alerted(policy, APRIL)) == (NOW, APRIL_NOW)


def test_a_month_that_has_ended_is_not_told_about(managers: list[str]) -> None:
    policy = capped("Late credit", "100.00", month=FEBRUARY, spent="95.00")

    assert budget_alerts_send(now=NOW) == 0

    assert mail.outbox == []
    assert alerted(policy, FEBRUARY) is None


def test_the_month_is_the_one_now_is_in_in_time_zone(managers: list[str], settings: Any) -> None:
    """April 1, 02:00 UTC is still March 31 in New York: March's row."""
    settings.TIME_ZONE = "America/New_York"
    capped("Late credit", "100.00", spent="95.00")

    assert budget_alerts_send(now=datetime(2025, 4, 1, 2, 0, tzinfo=UTC)) == 1


def test_charges_through_the_budget_service_trigger_it_once(managers: list[str]) -> None:
    policy = capped("Late credit", "100.00")
    customer = Customer.objects.create(external_id="C-1", name="Ada")

    def charge(amount: str) -> None:
        budget_charge(policy_id=policy.pk, customer_id=customer.pk, amount=Decimal(amount), now=NOW)

    charge("50.00")
    assert budget_alerts_send(now=NOW) == 0
    charge("30.00")  # 80.00 of 100.00
    assert budget_alerts_send(now=NOW) == 1
    charge("15.00")  # 95%: still the same month
    assert budget_alerts_send(now=NOW) == 0

    assert len(mail.outbox) == 1
    assert "80%" in mail.outbox[0].subject


def test_a_failed_send_gives_the_claim_back_and_the_next_run_sends(
    managers: list[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    failing = capped("Alpha", "100.00", spent="90.00")
    other = capped("Beta", "100.00", spent="95.00")
    real_send = budgets.send_mail

    def send_mail(subject: str, *args: Any, **kwargs: Any) -> int:
        if "Alpha" in subject:
            raise smtplib.SMTPServerDisconnected("gone")
        return real_send(subject, *args, **kwargs)

    monkeypatch.setattr(budgets, "send_mail", send_mail)
    with caplog.at_level(logging.ERROR, logger="compensation"):
        assert budget_alerts_send(now=NOW) == 1  # Beta only

    assert alerted(failing) is None
    assert alerted(other) == NOW
    assert f"budget alert for policy {failing.pk} not sent" in caplog.text

    monkeypatch.setattr(budgets, "send_mail", real_send)
    assert budget_alerts_send(now=NOW) == 1
    assert [m.subject.split(" has")[0] for m in mail.outbox] == ["Budget: Beta", "Budget: Alpha"]


def test_two_runs_at_once_send_one_e_mail(managers: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Both runs find the row unclaimed; the other run claims and sends first; this one's claim then fails."""
    policy = capped("Late credit", "100.00", spent="90.00")
    real_candidates = budgets.budget_alert_candidates
    runs: list[int] = []

    def candidates(**kwargs: Any) -> list[PolicyMonthSpend]:
        found = real_candidates(**kwargs)
        if not runs:
            monkeypatch.setattr(budgets, "budget_alert_candidates", real_candidates)
            runs.append(budget_alerts_send(now=NOW))  # the other run, between this one's read and its claim
        return found

    monkeypatch.setattr(budgets, "budget_alert_candidates", candidates)

    assert budget_alerts_send(now=NOW) == 0
    assert runs == [1]
    assert len(mail.outbox) == 1
    assert alerted(policy) == NOW


def test_a_run_while_another_is_sending_sends_nothing(managers: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    capped("Late credit", "100.00", spent="90.00")
    real_send = budgets.send_mail
    during: list[int] = []

    def send_mail(*args: Any, **kwargs: Any) -> int:
        during.append(budget_alerts_send(now=NOW))  # the row is claimed by now
        return real_send(*args, **kwargs)

    monkeypatch.setattr(budgets, "send_mail", send_mail)

    assert budget_alerts_send(now=NOW) == 1
    assert during == [0]
    assert len(mail.outbox) == 1


def test_without_a_manager_to_tell_the_month_is_marked_and_logged(
    make_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    make_user("bob", "manager")  # no e-mail address
    policy = capped("Late credit", "100.00", spent="90.00")

    with caplog.at_level(logging.WARNING, logger="compensation"):
        assert budget_alerts_send(now=NOW) == 0

    assert mail.outbox == []
    assert alerted(policy) == NOW
    assert "no manager has an e-mail address" in caplog.text


def test_the_periodic_task_runs_every_few_minutes_and_in_run_periodic_tasks(managers: list[str]) -> None:
    assert django_settings.CELERY_BEAT_SCHEDULE["budget-alerts-send"] == {
        "task": "compensation.budget_alerts_send",
        "schedule": 300.0,
    }
    capped("Late credit", "100.00", spent="90.00")
    capped("Goodwill", "100.00", spent="10.00")

    with time_machine.travel(NOW, tick=False):
        call_command("run_periodic_tasks", stdout=io.StringIO(), stderr=io.StringIO())
        call_command("run_periodic_tasks", stdout=io.StringIO(), stderr=io.StringIO())
        assert tasks.budget_alerts_send.apply().get() == 0

    assert [m.subject for m in mail.outbox] == ["Budget: Late credit has spent 90% of its monthly cap (March 2025)"]


@pytest.mark.django_db(transaction=True)
def test_runs_in_parallel_threads_tell_each_policy_once(need_postgres: None, managers: list[str]) -> None:
    """Four runs at once over twenty policies past 80%, each run on its own connection: twenty e-mails."""
    policies = [capped(f"P{n:02}", "100.00", spent="90.00") for n in range(20)]
    start = threading.Barrier(4)
    sent: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(timeout=10)
            sent.append(budget_alerts_send(now=NOW))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(sent) == 20
    assert sorted(m.subject.split(":")[1].split(" has")[0].strip() for m in mail.outbox) == [p.name for p in policies]
    assert not PolicyMonthSpend.objects.filter(alerted_at=None).exists()
