"""The event job for real: a Celery worker started by the test (PostgreSQL, Redis, the file e-mail backend),
and the job's own rules in-process (the lease, at most one e-mail, the remedy with the e-mail, pacing, the
slice, budgets running out, a category deactivated mid-event).

The worker helpers are tests/compensation/test_outcome_worker.py's; the worker here also swaps the e-mail
backend for the file one and sets the pace, which tests.settings fixes for the in-process tests.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.db.models import Count
from django.test import Client
from django.utils import timezone

from compensation.models import (
    Event,
    EventCustomer,
    Incident,
    Offer,
    OfferSet,
    Outcome,
    OutcomeSubmission,
    PolicyMonthSpend,
    Remedy,
)
from compensation.periods import month_start
from compensation.services import events
from compensation.services.events import CUT_OFF, LEASE, event_choose, event_work, events_resume, token_of
from compensation.tasks import event_process_task
from policies.choices import OfferKind
from policies.models import Category, Policy, RemedyTemplate
from tests.clock import CLOCK_PRELUDE
from tests.compensation.test_outcome_worker import (
    broker,  # noqa: F401 (a fixture)
    database_url_of_this_test,
    log_tail,
    wait_for,
    worker_db,  # noqa: F401 (a fixture)
    worker_stop,
)
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

EVENTS = "/api/v1/events/"
LINK = re.compile(r"https?://\S+?(/r/[0-9a-f]{43}/)(?:\?option=(\w+))?")
SEPARATOR = b"\n" + b"-" * 79 + b"\n"  # what the file backend writes after each message
EMAILED, FAILED, CANCELLED = EventCustomer.Status.EMAILED, EventCustomer.Status.FAILED, EventCustomer.Status.CANCELLED

# The worker as test_outcome_worker.py starts it, with the file e-mail backend and the pace this test wants
# (tests.settings fixes the locmem backend and no pace; settings are set before the worker reads them).
EVENT_WORKER_MAIN = CLOCK_PRELUDE + (
    "import os, sys; from django.conf import settings; "
    "settings.EMAIL_BACKEND = 'django.core.mail.backends.filebased.EmailBackend'; "
    "settings.EMAIL_FILE_PATH = os.environ['EMAIL_FILE_PATH']; "
    "settings.EVENT_EMAILS_PER_MINUTE = int(os.environ['EVENT_EMAILS_PER_MINUTE']); "
    "from recovery_project.celery import app; app.conf.task_always_eager = False; app.worker_main(sys.argv[1:])"
)


@contextlib.contextmanager
def event_worker(log: Path, mails: Path, *, per_minute: int = 0) -> Iterator[subprocess.Popen]:
    """``celery worker --pool prefork -c 1`` in its own process group, on the test database, e-mailing into
    ``mails``; stopped in any case."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url_of_this_test(),
        "REDIS_URL": settings.REDIS_URL,
        "EMAIL_FILE_PATH": str(mails),
        "EVENT_EMAILS_PER_MINUTE": str(per_minute),
    }
    command = [
        *(sys.executable, "-c", EVENT_WORKER_MAIN, "worker"),
        *("--pool", "prefork", "-c", "1", "-l", "warning", "-Q", "celery"),
        *("-n", f"event-test-{uuid.uuid4().hex[:8]}@%h"),
        *("--without-mingle", "--without-gossip", "--without-heartbeat"),
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        worker_stop(process)


def mails_read(folder: Path) -> list[EmailMessage]:
    """Every message the file backend wrote (each file holds one connection's messages, each followed by a
    line of 79 dashes)."""
    messages = []
    for path in sorted(folder.iterdir()):
        for chunk in path.read_bytes().split(SEPARATOR):
            if chunk.strip():
                messages.append(email.message_from_bytes(chunk, policy=email.policy.default))
    return messages


def recipients(folder: Path) -> Counter[str]:
    return Counter(str(message["To"]) for message in mails_read(folder))


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def customers(count: int, prefix: str = "EW") -> list[dict[str, Any]]:
    return [
        {"external_id": f"{prefix}-{n}", "name": f"Customer {n}", "email": f"{prefix.lower()}{n}@example.com"}
        for n in range(count)
    ]


def event_body(rows: list[dict[str, Any]], category: str = "late_delivery") -> dict[str, Any]:
    return {
        "name": "North warehouse missed Tuesday's deliveries",
        "category": category,
        "severity": 3,
        "description": "A conveyor failure held back every Tuesday delivery.",
        "customers": rows,
    }


def event_post(client: Any, rows: list[dict[str, Any]], category: str = "late_delivery") -> int:
    answer = client.post(EVENTS, event_body(rows, category), format="json")
    assert answer.status_code == 202, answer.content
    return answer.json()["id"]


def shown(client: Any, event_id: int) -> dict[str, Any]:
    answer = client.get(f"{EVENTS}{event_id}/")
    assert answer.status_code == 200, answer.content
    return answer.json()


def until_sent(client: Any, event_id: int, log: Path, *, timeout: float = 90) -> dict[str, Any]:
    def sent() -> dict[str, Any] | None:
        figures = shown(client, event_id)
        return figures if figures["status"] != "processing" else None

    return wait_for(
        sent,
        timeout=timeout,
        interval=0.2,
        what=lambda: f"the event to be sent; {shown(client, event_id)}\n{log_tail(log)}",
    )


def statuses(event_id: int) -> Counter[str]:
    return Counter(EventCustomer.objects.filter(event_id=event_id).values_list("status", flat=True))


@pytest.fixture
def late_world(db: None) -> Policy:
    """The only policy for late deliveries: a 10.00 credit (its option), free shipping back (its remedy)."""
    category = CategoryFactory(slug="late_delivery")
    policy = PolicyFactory(categories=[category])
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("10.00"))
    RemedyTemplate.objects.create(
        policy=policy, kind=OfferKind.FREE_SHIPPING, title="Your shipping back", value=Decimal("6.00")
    )
    return policy


@pytest.fixture
def mails(tmp_path: Path) -> Path:
    folder = tmp_path / "mail"
    folder.mkdir()
    return folder


# --- Through a real worker ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_event_posted_through_the_api_is_e_mailed_by_the_worker_and_a_customers_choice_is_recorded(
    worker_db: None,  # noqa: F811 (the fixture imported above)
    broker: None,  # noqa: F811
    demo_pack: None,
    manager: Any,
    mails: Path,
    tmp_path: Path,
) -> None:
    rows = [
        {"external_id": "EV-1", "name": "Maria Lopez", "email": "maria@example.com", "order_value": "120.00"},
        {"external_id": "EV-2", "name": "Sam Okafor", "email": "sam@example.com", "order_value": "40.00"},
        {"external_id": "EV-3", "name": "Ana Silva", "email": "ana@example.com", "interests": ["cooking"]},
    ]  # fmt: skip
    log = tmp_path / "worker.log"
    with event_worker(log, mails):
        event_id = event_post(manager, rows, category="missed_delivery")
        figures = until_sent(manager, event_id, log)
        assert (figures["status"], figures["total"], figures["processed"], figures["emailed"]) == ("sent", 3, 3, 3)
        assert (figures["failed"], figures["chosen"]) == (0, 0)

        messages = mails_read(mails)
        assert sorted(str(m["To"]) for m in messages) == ["ana@example.com", "maria@example.com", "sam@example.com"]
        maria = next(m for m in messages if m["To"] == "maria@example.com")
        text = text_of(maria)
        assert text.startswith("Dear Maria,")
        assert maria.get_body(("html",)) is not None
        links = {option: path for path, option in LINK.findall(text)}
        assert {"a", "none", "call"} <= set(links)

        page = Client()
        assert page.get(links["a"], {"option": "a"}).status_code == 200
        assert not OutcomeSubmission.objects.exists()  # opening a link records nothing
        chosen = page.post(links["a"], {"choice": "a"})
        assert chosen.status_code == 200, chosen.content.decode()[:2000]
        assert "You chose" in chosen.content.decode()

        offer_set = EventCustomer.objects.get(event_id=event_id, external_id="EV-1").offer_set
        recorded = wait_for(
            lambda: Outcome.objects.filter(submission__offer_set=offer_set).first(),
            timeout=30,
            what=lambda: f"the worker to record the choice\n{log_tail(log)}",
        )
    assert recorded.offer.label == "a"
    assert OutcomeSubmission.objects.get(offer_set=offer_set).status == OutcomeSubmission.Status.RECORDED
    figures = shown(manager, event_id)
    assert (figures["chosen"], figures["declined"], figures["emailed"]) == (1, 0, 3)


@pytest.mark.django_db(transaction=True)
def test_cancelling_mid_way_stops_the_e_mails_not_sent_yet(
    worker_db: None,  # noqa: F811
    broker: None,  # noqa: F811
    late_world: Policy,
    manager: Any,
    mails: Path,
    tmp_path: Path,
) -> None:
    log = tmp_path / "worker.log"
    with event_worker(log, mails, per_minute=120):  # one e-mail every half second
        event_id = event_post(manager, customers(30))
        wait_for(lambda: len(mails_read(mails)) >= 3, timeout=60, what=lambda: f"three e-mails\n{log_tail(log)}")
        answer = manager.post(f"{EVENTS}{event_id}/cancel/")
        assert answer.status_code == 200, answer.content
        assert answer.json()["status"] == "cancelled"
        # The job lets go of the event once it sees the cancel (the e-mail it was sending, if any, finishes).
        wait_for(
            lambda: (
                not Event.objects.filter(pk=event_id, lease_until__isnull=False).exists()
                and not EventCustomer.objects.filter(event_id=event_id, status=EventCustomer.Status.SENDING).exists()
            ),
            timeout=30,
            what=lambda: f"the job to stop; {statuses(event_id)}\n{log_tail(log)}",
        )
        sent = len(mails_read(mails))
        time.sleep(2)  # four paced intervals: a job still sending would have sent more by now
        assert len(mails_read(mails)) == sent

    rows = statuses(event_id)
    assert rows[EMAILED] == sent
    assert 3 <= sent < 30
    assert rows[EMAILED] + rows[CANCELLED] == 30, rows
    assert max(recipients(mails).values()) == 1
    figures = shown(manager, event_id)
    assert (figures["status"], figures["total"], figures["emailed"], figures["failed"]) == ("cancelled", 30, sent, 0)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_event_loses_no_customer_and_e_mails_nobody_twice(
    worker_db: None,  # noqa: F811
    broker: None,  # noqa: F811
    late_world: Policy,
    manager: Any,
    mails: Path,
    tmp_path: Path,
) -> None:
    log = tmp_path / "worker.log"
    with event_worker(log, mails, per_minute=120) as first:
        event_id = event_post(manager, customers(30))
        wait_for(lambda: len(mails_read(mails)) >= 5, timeout=60, what=lambda: f"five e-mails\n{log_tail(log)}")
        worker_stop(first, kill=True)  # the whole process group, mid-way through the paced sending
    at_kill = statuses(event_id)
    assert at_kill[EMAILED] < 30, "the worker was to be killed mid-way"

    # The dead worker's lease runs out (moved into the past here, rather than waited for), and the periodic
    # resume sends the event's task again, for the next worker.
    past = timezone.now() - timedelta(seconds=1)
    Event.objects.filter(pk=event_id).update(lease_until=past, worked_at=past - LEASE)
    assert events_resume() == 1
    with event_worker(log, mails):
        figures = until_sent(manager, event_id, log)

    rows = list(EventCustomer.objects.filter(event_id=event_id).select_related("offer_set"))
    assert len(rows) == 30
    assert {row.status for row in rows} <= {EMAILED, FAILED}
    failed = [row for row in rows if row.status == FAILED]
    assert len(failed) <= 1  # at most the one e-mail the kill cut off
    assert all(row.error == CUT_OFF for row in failed)
    # Every customer once: one incident and one offer set each.
    external_ids = sorted(f"EW-{n}" for n in range(30))
    per_customer = Counter(Incident.objects.values_list("customer__external_id", flat=True))
    assert sorted(per_customer) == external_ids
    assert set(per_customer.values()) == {1}
    assert Counter(OfferSet.objects.values_list("customer__external_id", flat=True)) == per_customer
    # No address got two e-mails; every e-mailed customer got theirs.
    got = recipients(mails)
    assert max(got.values()) == 1
    assert {row.email for row in rows if row.status == EMAILED} <= set(got)
    # The remedy went with each e-mail that went, and only with those.
    for row in rows:
        given = Remedy.objects.filter(incident_id=row.offer_set.incident_id, status=Remedy.Status.GIVEN).exists()
        assert given == (row.status == EMAILED), row
    assert (figures["status"], figures["total"], figures["processed"]) == ("sent", 30, 30)
    assert figures["emailed"] + figures["failed"] == 30
    assert figures["failed"] == len(failed)


@pytest.mark.django_db(transaction=True)
def test_customers_posted_again_are_skipped_and_nobody_is_e_mailed_twice(
    worker_db: None,  # noqa: F811
    broker: None,  # noqa: F811
    late_world: Policy,
    manager: Any,
    mails: Path,
    tmp_path: Path,
) -> None:
    log = tmp_path / "worker.log"
    first = customers(3)
    with event_worker(log, mails):
        event_id = event_post(manager, first)
        until_sent(manager, event_id, log)

        again = manager.post(f"{EVENTS}{event_id}/customers/", {"customers": first[:2]}, format="json")
        assert again.status_code == 202, again.content
        assert (again.json()["added"], again.json()["total"], again.json()["status"]) == (0, 3, "sent")

        one_more = manager.post(
            f"{EVENTS}{event_id}/customers/", {"customers": [first[2], *customers(4)[3:]]}, format="json"
        )
        assert one_more.status_code == 202, one_more.content
        assert (one_more.json()["added"], one_more.json()["total"]) == (1, 4)
        figures = until_sent(manager, event_id, log)

    assert (figures["status"], figures["total"], figures["emailed"]) == ("sent", 4, 4)
    assert recipients(mails) == Counter({f"ew{n}@example.com": 1 for n in range(4)})
    assert EventCustomer.objects.filter(event_id=event_id).count() == 4


# --- Bad input -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_external_id_repeated_within_one_call_is_refused_naming_the_second_row(
    late_world: Policy, manager: Any
) -> None:
    rows = [*customers(3), {"external_id": "EW-1", "name": "Again", "email": "again@example.com"}]
    answer = manager.post(EVENTS, event_body(rows), format="json")
    assert answer.status_code == 400
    assert "customers[3].external_id" in answer.content.decode()
    assert "customers[1].external_id" not in answer.content.decode()
    assert not Event.objects.exists()
    assert not EventCustomer.objects.exists()


# --- The job in-process ----------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when the job sleeps (or a test moves it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def event_made(manager: Any, count: int) -> Event:
    """An event posted through the API whose task never ran (the test's transaction never commits)."""
    return Event.objects.get(pk=event_post(manager, customers(count)))


@pytest.mark.django_db
def test_a_second_worker_does_nothing_while_the_first_holds_the_event(late_world: Policy, manager: Any) -> None:
    event = event_made(manager, 3)
    now = timezone.now()
    held = events._lease_take(event.pk, now)
    assert held is not None

    done = event_work(event_id=event.pk, now=now + timedelta(seconds=5))

    assert (done.prepared, done.emailed, done.finished, done.again_in) == (0, 0, False, None)
    assert statuses(event.pk) == {EventCustomer.Status.QUEUED: 3}
    assert mail.outbox == []
    # Once the hold runs out, the next task takes the event and sends it all.
    done = event_work(event_id=event.pk, now=now + LEASE + timedelta(seconds=1))
    assert (done.prepared, done.emailed, done.finished) == (3, 3, True)


@pytest.mark.django_db
def test_a_worker_whose_hold_was_taken_over_sends_no_more_and_cannot_release_the_new_hold(
    late_world: Policy, manager: Any
) -> None:
    event = event_made(manager, 4)
    now = timezone.now()
    clock = FakeClock()
    taken_over: list[Any] = []

    def send_and_be_taken_over(self: Any, messages: list[Any]) -> int:
        mail.outbox.extend(messages)
        if not taken_over:  # while the first e-mail goes, the hold runs out and another worker takes it
            Event.objects.filter(pk=event.pk).update(lease_until=now - timedelta(seconds=1))
            taken_over.append(events._lease_take(event.pk, now + timedelta(seconds=1)))
            clock.now += events.RENEW_SECONDS  # the first holder renews after this e-mail
        return len(messages)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", send_and_be_taken_over)
        done = event_work(event_id=event.pk, now=now, clock=clock, sleep=clock.sleep)

    assert done.emailed == 1
    assert (done.finished, done.again_in) == (False, None)  # the new holder carries on; no task from us
    assert len(mail.outbox) == 1
    assert Event.objects.get(pk=event.pk).lease_until == taken_over[0]  # not released by the old holder
    assert statuses(event.pk) == {EMAILED: 1, EventCustomer.Status.READY: 3}


@pytest.mark.django_db
def test_a_send_cut_off_by_a_crash_counts_as_failed_and_is_not_sent_again_by_the_job(
    late_world: Policy, manager: Any
) -> None:
    event = event_made(manager, 3)
    now = timezone.now()
    event_work(event_id=event.pk, now=now, seconds=0)  # prepares the batch, then the slice is over
    first = EventCustomer.objects.filter(event=event).order_by("position").first()
    # A worker claimed it and died before marking it sent: its hold is still on the event.
    EventCustomer.objects.filter(pk=first.pk).update(status=EventCustomer.Status.SENDING)
    Event.objects.filter(pk=event.pk).update(lease_until=now + LEASE)

    done = event_work(event_id=event.pk, now=now + LEASE + timedelta(seconds=1))

    assert (done.emailed, done.failed, done.finished) == (2, 1, True)
    first.refresh_from_db()
    assert (first.status, first.error) == (FAILED, CUT_OFF)
    assert first.email not in [m.to[0] for m in mail.outbox]
    assert not Remedy.objects.filter(incident_id=first.offer_set.incident_id, status=Remedy.Status.GIVEN).exists()
    assert shown(manager, event.pk)["failed"] == 1
    # The admin's re-send queues it; the job e-mails it, once, and gives the remedy then.
    assert events.event_resend(row_ids=[first.pk]) == 1
    assert Event.objects.get(pk=event.pk).status == Event.Status.PROCESSING
    event_work(event_id=event.pk, now=now + LEASE + timedelta(seconds=2))
    assert events.event_resend(row_ids=[first.pk]) == 0
    assert [m.to[0] for m in mail.outbox].count(first.email) == 1
    assert Remedy.objects.filter(incident_id=first.offer_set.incident_id, status=Remedy.Status.GIVEN).exists()


@pytest.mark.django_db
def test_the_remedy_is_given_when_the_e_mail_goes_and_not_when_it_fails(late_world: Policy, manager: Any) -> None:
    event = event_made(manager, 2)
    sent_to: list[str] = []

    def send_messages(self: Any, messages: list[Any]) -> int:
        if messages[0].to == ["ew1@example.com"]:
            raise OSError("connection refused")
        sent_to.extend(m.to[0] for m in messages)
        return len(messages)

    event_work(event_id=event.pk, seconds=0)  # offer sets made, nothing sent yet
    assert Remedy.objects.count() == 2
    assert not Remedy.objects.filter(status=Remedy.Status.GIVEN).exists()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", send_messages)
        done = event_work(event_id=event.pk)

    assert (done.emailed, done.failed, done.finished) == (1, 1, True)
    rows = {row.external_id: row for row in EventCustomer.objects.filter(event=event).select_related("offer_set")}
    assert (rows["EW-0"].status, rows["EW-1"].status) == (EMAILED, FAILED)
    assert "connection refused" in rows["EW-1"].error
    given = set(Remedy.objects.filter(status=Remedy.Status.GIVEN).values_list("incident_id", flat=True))
    assert given == {rows["EW-0"].offer_set.incident_id}


@pytest.mark.django_db
def test_sending_keeps_the_pace_and_a_slice_ends_with_the_wait_left(
    late_world: Policy, manager: Any, settings: Any
) -> None:
    settings.EVENT_EMAILS_PER_MINUTE = 30  # one e-mail every 2 s
    event = event_made(manager, 5)
    clock = FakeClock()

    done = event_work(event_id=event.pk, seconds=5, clock=clock, sleep=clock.sleep)

    # Sent at 0, 2 and 4 s; the fourth would go at 6 s, past the 5 s slice: the next task runs in 2 s.
    assert (done.emailed, done.finished, done.again_in) == (3, False, pytest.approx(2.0))
    assert clock.slept == [pytest.approx(2.0), pytest.approx(2.0)]
    assert Event.objects.get(pk=event.pk).lease_until is None  # let go for the next task

    # The next task, started at once by another route (a resume, a second task), still waits out the pace.
    settings.EVENT_EMAILS_PER_MINUTE = 60  # one a second, so the wait left is under a second whatever the clock
    done = event_work(event_id=event.pk, seconds=60, clock=clock, sleep=clock.sleep)
    assert (done.emailed, done.finished) == (2, True)
    assert len(clock.slept) == 4
    assert all(0 < wait <= 1.0 for wait in clock.slept[2:])


@pytest.mark.django_db
def test_an_unpaced_slice_ends_once_its_seconds_are_spent_and_the_task_sends_itself_again(
    late_world: Policy, manager: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    event = event_made(manager, 5)
    clock = FakeClock()
    real_send = events._send_one

    def slow_send(**kwargs: Any) -> str:
        clock.now += 3  # each e-mail takes 3 s
        return real_send(**kwargs)

    monkeypatch.setattr(events, "_send_one", slow_send)
    done = event_work(event_id=event.pk, seconds=5, clock=clock, sleep=clock.sleep)
    assert (done.emailed, done.finished, done.again_in) == (2, False, 0.0)  # 6 s > 5 s after the second
    assert statuses(event.pk) == {EMAILED: 2, EventCustomer.Status.READY: 3}

    # The task sends itself again until nothing is left (eager here: each next slice runs inside the last).
    slices: list[int] = []
    real_work = events.event_work

    def sliced_work(**kwargs: Any) -> Any:
        done = real_work(**kwargs, seconds=5, clock=clock, sleep=clock.sleep)
        slices.append(done.emailed)
        return done

    monkeypatch.setattr(events, "event_work", sliced_work)
    event_process_task(event.pk)

    assert slices == [2, 1]  # 2 e-mails, then the last one and the end
    assert statuses(event.pk) == {EMAILED: 5}
    assert Event.objects.get(pk=event.pk).status == Event.Status.SENT
    assert events.SLICE_SECONDS <= settings.CELERY_TASK_SOFT_TIME_LIMIT / 2  # a slice overrunning is still inside


@pytest.mark.django_db
def test_budgets_running_out_mid_event_leave_later_customers_the_apology_and_remedy_without_options(
    late_world: Policy, manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    late_world.monthly_cap = Decimal("20.00")  # two 10.00 credits
    late_world.save()
    monkeypatch.setattr(events, "BATCH", 2)
    event = event_made(manager, 6)
    now = timezone.now()

    for _ in range(10):  # the first batch, one unit of work at a time, until both are e-mailed
        event_work(event_id=event.pk, now=now, seconds=0)
        if statuses(event.pk)[EMAILED] == 2:
            break
    first_two = list(EventCustomer.objects.filter(event=event, status=EMAILED))
    assert all(not row.no_options for row in first_two)
    for row in first_two:  # both choose the credit: the month's budget is spent
        event_choose(token=token_of(row.nonce), choice="a", now=now)
    assert PolicyMonthSpend.objects.get(policy=late_world, month=month_start(now)).spent == Decimal("20.00")

    for _ in range(40):
        if event_work(event_id=event.pk, now=now, seconds=0).finished:
            break

    rows = list(EventCustomer.objects.filter(event=event).select_related("offer_set").order_by("position"))
    assert [row.status for row in rows] == [EMAILED] * 6
    assert [row.no_options for row in rows] == [False, False, True, True, True, True]
    later = rows[2:]
    assert not Offer.objects.filter(offer_set__in=[row.offer_set for row in later]).exists()
    for row in later:
        (message,) = [m for m in mail.outbox if m.to == [row.email]]
        assert "Your shipping back" in message.body  # the remedy, said and given
        assert Remedy.objects.get(incident_id=row.offer_set.incident_id).status == Remedy.Status.GIVEN
    figures = shown(manager, event.pk)
    assert (figures["status"], figures["emailed"], figures["no_options"], figures["chosen"]) == ("sent", 6, 4, 2)


@pytest.mark.django_db
def test_a_category_deactivated_mid_event_fails_the_customers_not_prepared_yet_saying_why(
    late_world: Policy, manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "BATCH", 2)
    event = event_made(manager, 5)
    event_work(event_id=event.pk, seconds=0)  # the first batch prepared
    category = Category.objects.get(slug="late_delivery")
    category.active = False
    category.save()

    for _ in range(20):
        if event_work(event_id=event.pk).finished:
            break

    rows = list(EventCustomer.objects.filter(event=event).order_by("position"))
    assert [row.status for row in rows] == [EMAILED, EMAILED, FAILED, FAILED, FAILED]
    assert all("no longer active" in row.error for row in rows[2:])
    assert all(row.offer_set_id is None for row in rows[2:])
    assert sorted(m.to[0] for m in mail.outbox) == ["ew0@example.com", "ew1@example.com"]
    figures = shown(manager, event.pk)
    assert (figures["status"], figures["processed"], figures["emailed"], figures["failed"]) == ("sent", 2, 2, 3)
    assert Incident.objects.aggregate(n=Count("pk"))["n"] == 2
