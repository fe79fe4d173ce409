"""What a request body may be (API.md, "Hardening"): ``/api/`` takes JSON, a non-empty body of another type is
415 and a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is 413 whatever its type, both answered before a byte of the
body is read. Bodies of unknown length are read up to the limit and no further. Body-less actions and the browsable
API's raw JSON form keep working."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.test import Client, override_settings
from django.test.client import FakePayload
from django.utils import timezone

from compensation.models import Customer, Escalation, Incident, OfferSet, OutcomeSubmission
from tests.factories import CategoryFactory

pytestmark = pytest.mark.django_db

OFFER_SETS = "/api/v1/offer-sets/"
BOUNDARY = "----recovery-test-boundary"
TWENTY_MB = 20 * 1024 * 1024


def multipart(fields: dict[str, str], *, file_bytes: int = 0) -> bytes:
    """A multipart/form-data body with the fields and, if asked, a file part of that many bytes."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    if file_bytes:
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="attachment"; filename="big.bin"\r\n'
        parts.append(head.encode() + b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * file_bytes + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def set_body(external_id: str = "C-1") -> dict[str, Any]:
    return {
        "customer": {"external_id": external_id, "name": "Ada Lovelace", "email": "ada@example.com"},
        "incident": {"category": "late_delivery", "severity": 3, "order_value": "80.00"},
    }


def error(response: Any) -> tuple[int, str]:
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = response.json()
    assert set(body) == {"detail", "code"}, body
    return response.status_code, body["code"]


@pytest.fixture
def spooled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the uploaded files Django's handler spooled to a temporary file."""
    names: list[str] = []
    original = TemporaryFileUploadHandler.new_file

    def new_file(self: Any, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        names.append(file_name)
        original(self, field_name, file_name, *args, **kwargs)

    monkeypatch.setattr(TemporaryFileUploadHandler, "new_file", new_file)
    return names


@pytest.fixture
def open_set(demo_pack: None, agent1: Any) -> dict[str, Any]:
    response = agent1.post(OFFER_SETS, set_body(), format="json")
    assert response.status_code == 201, response.content
    return response.json()


# --- The 20 MB multipart outcome (the review's finding) ---------------------------------------------------


def test_a_20_mb_multipart_outcome_is_413_unread_and_records_nothing(
    open_set: dict[str, Any], agent1: Any, spooled: list[str]
) -> None:
    """It was read, its file spooled to disk, and answered 202 with the choice recorded."""
    body = multipart({"choice": open_set["options"][0]["label"]}, file_bytes=TWENTY_MB)
    payload = FakePayload(body)

    response = agent1.generic(
        "POST",
        f"{OFFER_SETS}{open_set['id']}/outcome/",
        body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        **{"wsgi.input": payload},
    )

    assert error(response) == (413, "request_too_large")
    assert not payload.read_started, "the body was read"
    assert spooled == []
    assert not OutcomeSubmission.objects.exists()


def test_a_small_multipart_outcome_is_415_unread_and_records_nothing(
    open_set: dict[str, Any], agent1: Any, spooled: list[str]
) -> None:
    body = multipart({"choice": open_set["options"][0]["label"]}, file_bytes=1000)
    payload = FakePayload(body)

    response = agent1.generic(
        "POST",
        f"{OFFER_SETS}{open_set['id']}/outcome/",
        body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        **{"wsgi.input": payload},
    )

    assert error(response) == (415, "unsupported_media_type")
    assert "application/json" in response.json()["detail"]
    assert not payload.read_started
    assert spooled == []
    assert not OutcomeSubmission.objects.exists()


def test_an_oversized_multipart_post_to_the_admin_is_413_unread(spooled: list[str]) -> None:
    """Outside /api/ the size limit holds too: the admin's login form would have spooled the file (CSRF reads the
    form before the view runs)."""
    body = multipart({"username": "admin", "password": "x"}, file_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    payload = FakePayload(body)

    response = Client().generic(
        "POST",
        "/admin/login/",
        body,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        **{"wsgi.input": payload},
    )

    assert response.status_code == 413
    assert not payload.read_started
    assert spooled == []


# --- 415: JSON only ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"customer.external_id=C-1&incident.category=late_delivery"),
        (f"multipart/form-data; boundary={BOUNDARY}", multipart({"customer": json.dumps(set_body()["customer"])})),
        ("text/plain", json.dumps(set_body()).encode()),
        ("text/json", json.dumps(set_body()).encode()),
        ("application/xml", b"<customer external_id='C-1'/>"),
        ("", json.dumps(set_body()).encode()),
    ],
)
def test_a_non_empty_body_that_is_not_json_is_415_and_writes_nothing(
    demo_pack: None, agent1: Any, content_type: str, body: bytes
) -> None:
    response = agent1.generic("POST", OFFER_SETS, body, content_type=content_type)

    assert error(response) == (415, "unsupported_media_type")
    assert not Customer.objects.exists()
    assert not OfferSet.objects.exists()


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.recovery+json"],
)
def test_json_with_parameters_or_a_json_suffix_is_read(demo_pack: None, agent1: Any, content_type: str) -> None:
    response = agent1.generic("POST", OFFER_SETS, json.dumps(set_body()), content_type=content_type)

    assert response.status_code == 201, response.content
    assert OfferSet.objects.count() == 1


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_the_body_of_a_get_or_options_is_left_unread_not_refused(agent1: Any, method: str) -> None:
    """Nothing reads it (the schema declares 415 for POST, PUT and PATCH alone)."""
    body = multipart({"a": "1"}, file_bytes=1000)
    payload = FakePayload(body)

    response = agent1.generic(
        method, "/api/v1/me/", body, content_type=f"multipart/form-data; boundary={BOUNDARY}", **{"wsgi.input": payload}
    )

    assert response.status_code == 200
    assert not payload.read_started


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_with_a_form_body_are_415(agent1: Any, method: str) -> None:
    response = agent1.generic(method, "/api/v1/me/", b"a=1", content_type="application/x-www-form-urlencoded")

    assert error(response) == (415, "unsupported_media_type")


def escalation_open() -> Escalation:
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    customer = Customer.objects.create(external_id="C-9", name="Ada Lovelace")
    incident = Incident.objects.create(
        customer=customer, category=category, severity=5, currency="USD", occurred_at=timezone.now()
    )
    return Escalation.objects.create(
        kind=Escalation.Kind.SENIOR_MANAGER,
        reason="Severity 5",
        due_at=timezone.now() + timedelta(hours=4),
        incident=incident,
        customer=customer,
    )


@pytest.mark.parametrize(
    "content_type",
    [None, "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", "application/json"],
)
def test_a_body_less_action_works_whatever_its_content_type(manager: Any, content_type: str | None) -> None:
    escalation = escalation_open()
    headers = {} if content_type is None else {"content_type": content_type}

    response = manager.generic("POST", f"/api/v1/escalations/{escalation.pk}/acknowledge/", b"", **headers)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "acknowledged"


# --- 413: any type -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded"])
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_a_body_over_the_limit_is_413_whatever_its_type_and_unread(agent1: Any, content_type: str) -> None:
    body = b"x" * 2049
    payload = FakePayload(body)

    response = agent1.generic("POST", OFFER_SETS, body, content_type=content_type, **{"wsgi.input": payload})

    assert error(response) == (413, "request_too_large")
    assert response.json()["detail"] == "The request body is larger than 2048 bytes."
    assert not payload.read_started


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_a_body_at_the_limit_is_read(demo_pack: None, agent1: Any) -> None:
    body = json.dumps(set_body())
    body += " " * (2048 - len(body))

    response = agent1.generic("POST", OFFER_SETS, body, content_type="application/json")

    assert response.status_code == 201, response.content


# --- Bodies of unknown length (Transfer-Encoding: chunked) ---------------------------------------------------


def chunked(client: Any, path: str, body: bytes, *, terminated: bool = True, content_type: str = "application/json"):
    """A request without Content-Length, as gunicorn hands on a chunked one: the stream ends with the body."""
    stream = io.BytesIO(body)
    environ: dict[str, Any] = {"wsgi.input": stream, "HTTP_TRANSFER_ENCODING": "chunked"}
    if terminated:
        environ["wsgi.input_terminated"] = True
    response = client.generic("POST", path, b"", content_type=content_type, **environ)
    return response, stream


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_a_chunked_body_over_the_limit_is_413_after_reading_one_byte_past_it(agent1: Any) -> None:
    response, stream = chunked(agent1, OFFER_SETS, b"x" * 10_000)

    assert error(response) == (413, "request_too_large")
    assert stream.tell() == 2049
    assert not Customer.objects.exists()


def test_a_chunked_json_body_within_the_limit_reaches_the_view(demo_pack: None, agent1: Any) -> None:
    response, _ = chunked(agent1, OFFER_SETS, json.dumps(set_body()).encode())

    assert response.status_code == 201, response.content
    assert response.json()["customer"]["external_id"] == "C-1"


def test_a_chunked_form_body_is_415(agent1: Any) -> None:
    response, _ = chunked(agent1, OFFER_SETS, b"a=1", content_type="application/x-www-form-urlencoded")

    assert error(response) == (415, "unsupported_media_type")


def test_a_chunked_body_on_a_server_that_does_not_end_the_stream_is_411_unread(agent1: Any) -> None:
    response, stream = chunked(agent1, OFFER_SETS, json.dumps(set_body()).encode(), terminated=False)

    assert error(response) == (411, "length_required")
    assert stream.tell() == 0


# --- The browsable API ----------------------------------------------------------------------------------


def test_the_browsable_apis_raw_json_form_keeps_working(demo_pack: None, make_user: Any) -> None:
    """DRF's page offers the raw form with the parsers' media types (now JSON alone) and its script posts the
    textarea with the chosen type and the CSRF token in a header (rest_framework/js/ajax-form.js)."""
    user, _ = make_user("agent-browser", "agent")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    page = browser.get(OFFER_SETS, HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    html = page.content.decode()
    form = re.search(r'<select[^>]*data-override="content-type"[^>]*>(.*?)</select>', html, re.S)
    assert form is not None, "no raw data form"
    assert re.findall(r"<option[^>]*>([^<]*)</option>", form.group(1)) == ["application/json"]
    assert 'enctype="multipart/form-data"' not in html  # no HTML form that would post multipart

    response = browser.post(
        OFFER_SETS,
        json.dumps(set_body()),
        content_type="application/json",
        HTTP_ACCEPT="text/html; q=1.0, */*",
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )

    assert response.status_code == 201, response.content[:500]
    assert response["Content-Type"].startswith("text/html")
    assert OfferSet.objects.count() == 1


def test_the_schema_offers_json_request_bodies_only(api_client: Any) -> None:
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    types = {
        media
        for operations in schema["paths"].values()
        for operation in operations.values()
        for media in operation.get("requestBody", {}).get("content", {})
    }
    assert types == {"application/json"}
