"""An operational event end to end, in-process (tasks eager, e-mails in memory): create, process, e-mail,
follow a link, choose, and the figures move."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from compensation.models import Event, EventCustomer, Outcome, Remedy
from tests.events.data import CUSTOMERS, event_body

pytestmark = pytest.mark.django_db


def links_of(message: Any) -> list[str]:
    return re.findall(r"https?://\S+/r/[0-9a-f]{43}/(?:\?option=\w+)?", message.body)


def test_an_event_reaches_every_customer_with_their_own_choice(
    demo_pack: None, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        answer = manager.post("/api/v1/events/", event_body(), format="json")
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert body["status"] == "processing"
    assert body["total"] == 3
    event_id = body["id"]

    detail = manager.get(f"/api/v1/events/{event_id}/").json()
    assert detail["status"] == "sent"
    assert (detail["total"], detail["processed"], detail["emailed"], detail["failed"]) == (3, 3, 3, 0)
    assert sorted(m.to[0] for m in mail.outbox) == ["ana@example.com", "maria@example.com", "sam@example.com"]
    maria = next(m for m in mail.outbox if m.to == ["maria@example.com"])
    assert maria.body.startswith("Dear Maria,")
    assert maria.alternatives
    assert maria.alternatives[0][1] == "text/html"
    links = links_of(maria)
    assert any(link.endswith("?option=a") for link in links)
    assert any(link.endswith("?option=none") for link in links)
    assert any(link.endswith("?option=call") for link in links)

    page = Client()
    path = re.sub(r"^https?://[^/]+", "", links[0]).split("?")[0]
    opened = page.get(path, {"option": "a"})
    assert opened.status_code == 200
    assert Outcome.objects.count() == 0  # opening records nothing
    with django_capture_on_commit_callbacks(execute=True):
        chosen = page.post(path, {"choice": "a"})
    assert chosen.status_code == 200, chosen.content.decode()[:2000]
    assert "You chose" in chosen.content.decode()
    assert Outcome.objects.count() == 1
    again = page.post(path, {"choice": "b"})
    assert again.status_code == 409
    detail = manager.get(f"/api/v1/events/{event_id}/").json()
    assert detail["chosen"] == 1
    assert detail["declined"] == 0

    # The remedy went with the e-mail.
    row = EventCustomer.objects.get(external_id="EV-1")
    assert Remedy.objects.filter(incident=row.offer_set.incident).exclude(status="given").count() == 0
    assert Event.objects.get(pk=event_id).status == "sent"


def test_an_event_takes_a_body_over_the_general_limit_up_to_its_own(demo_pack: None, manager: Any, settings) -> None:
    padding = "x" * 2000
    rows = [
        {"external_id": f"BIG-{i}", "name": "Big Body", "email": f"big{i}@example.com", "external_ref": padding[:120]}
        for i in range(20)
    ]
    body = event_body(customers=rows, description=padding)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    settings.EVENT_MAX_BODY_BYTES = 1024 * 1024
    assert manager.post("/api/v1/events/", body, format="json").status_code == 202
    settings.EVENT_MAX_BODY_BYTES = 3000
    refused = manager.post("/api/v1/events/", body, format="json")
    assert refused.status_code == 413
    assert refused.json()["detail"] == "The request body is larger than 3000 bytes."  # the events' own limit
    assert manager.post("/api/v1/offer-sets/", body, format="json").status_code == 413


def test_the_explanation_of_a_choice_made_on_the_page_has_no_note_from_a_helper(
    demo_pack: None, manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from compensation.models import FollowUp
    from compensation.services.follow_ups import follow_up_send

    with django_capture_on_commit_callbacks(execute=True):
        event_id = manager.post("/api/v1/events/", event_body(customers=CUSTOMERS[:1]), format="json").json()["id"]
    assert manager.get(f"/api/v1/events/{event_id}/").json()["emailed"] == 1
    path = re.sub(r"^https?://[^/]+", "", links_of(mail.outbox[0])[0]).split("?")[0]
    with django_capture_on_commit_callbacks(execute=True):
        assert Client().post(path, {"choice": "a"}).status_code == 200
    explanation = FollowUp.objects.get(kind="explanation")
    mail.outbox.clear()
    assert follow_up_send(follow_up_id=explanation.pk, now=explanation.send_after)
    (sent,) = mail.outbox
    assert "What we did about it:" in sent.body
    assert "A note from the person who helped you" not in sent.body


def test_beat_and_run_periodic_tasks_take_up_events_nobody_is_processing(settings) -> None:
    from compensation.management.commands.run_periodic_tasks import PERIODIC
    from compensation.tasks import events_resume

    assert settings.CELERY_BEAT_SCHEDULE["events-resume"] == {"task": events_resume.name, "schedule": 60.0}
    assert PERIODIC["events_resume"] is events_resume


def test_the_job_sends_itself_again_after_a_wait(demo_pack: None, manager: Any, monkeypatch: Any) -> None:
    """The next slice of a paced event is sent with the broker's countdown, not as an argument of the task."""
    from celery import current_app

    from compensation.queue import EVENT_PROCESS
    from compensation.services.events import event_enqueue

    sent: list[tuple[Any, Any, dict[str, Any]]] = []
    task = current_app.tasks[EVENT_PROCESS]
    monkeypatch.setattr(task, "apply_async", lambda args, kwargs, **options: sent.append((args, kwargs, options)))
    assert event_enqueue(7, countdown=2.5) is True
    assert event_enqueue(8) is True
    assert sent == [((7,), {}, {"retry": False, "countdown": 2.5}), ((8,), {}, {"retry": False})]
