"""The policy admin through Django's test client: the add and change forms with their
inlines, versioning on save, validation errors, the changelist, actions, and the
category and perk admins.

Form posts start from the fields the page itself renders (parsed from the GET), so
the inline prefixes and management forms are the admin's own, as a browser would
send them without JavaScript.
"""

from __future__ import annotations

from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.admin.templatetags.admin_list import result_headers
from django.urls import reverse
from django.utils.text import capfirst
from pytest_django.asserts import assertContains, assertNotContains

from policies.choices import REMEDY_KINDS, OfferKind, Placement
from policies.models import Category, OfferTemplate, Perk, Policy, PolicyVersion, RemedyTemplate
from policies.services import policy_version_record
from tests.factories import CategoryFactory, OfferTemplateFactory, PerkFactory, PolicyFactory

FormData = dict[str, Any]


# --- Helpers ---------------------------------------------------------------------------


class _FormFields(HTMLParser):
    """The name/value pairs a browser would submit from one form of a page (no JavaScript run)."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.fields: dict[str, list[str]] = {}
        self._in_form = False
        self._select: str | None = None
        self._select_multiple = False
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None

    def _add(self, name: str, value: str) -> None:
        self.fields.setdefault(name, []).append(value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        if tag == "form":
            self._in_form = attr.get("id") == self.form_id
        if not self._in_form:
            return
        name = attr.get("name")
        if tag == "input" and name:
            kind = attr.get("type", "text")
            if kind in {"submit", "button", "image", "reset", "file"}:
                return
            if kind in {"checkbox", "radio"}:
                if "checked" in attr:
                    self._add(name, attr.get("value") or "on")
                return
            self._add(name, attr.get("value", ""))
        elif tag == "select" and name:
            self._select, self._select_multiple = name, "multiple" in attr
            self._select_first, self._select_chosen = None, False
        elif tag == "option" and self._select:
            value = attr.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in attr:
                self._add(self._select, value)
                self._select_chosen = True
        elif tag == "textarea" and name:
            self._textarea = name
            self._add(name, "")

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea][-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select" and self._select:
            # A single select with nothing marked selected submits its first option.
            if not self._select_multiple and not self._select_chosen and self._select_first is not None:
                self._add(self._select, self._select_first)
            self._select = None
        elif tag == "textarea" and self._textarea:
            # Browsers drop the newline right after <textarea>, which Django writes.
            value = self.fields[self._textarea][-1]
            self.fields[self._textarea][-1] = value.removeprefix("\r\n").removeprefix("\n")
            self._textarea = None


def page_form(response: Any, form_id: str, status: int = 200) -> FormData:
    """The form's fields as the test client posts them; the JavaScript-only ``__prefix__`` template is left out."""
    assert response.status_code == status
    parser = _FormFields(form_id)
    parser.feed(response.content.decode())
    assert parser.fields, f"no form #{form_id} on the page"
    return {
        name: values[0] if len(values) == 1 else values
        for name, values in parser.fields.items()
        if "__prefix__" not in name and name != "csrfmiddlewaretoken"
    }


def offer_fields(index: int, **values: Any) -> FormData:
    """One offer inline form; fields not given are left empty, as in a fresh "Add another" form."""
    fields: FormData = {
        "kind": "",
        "order": str(index),
        "title": "",
        "message": "",
        "value": "",
        "max_amount": "",
        "cost": "",
        "expires_in_days": "",
        "id": "",
    }
    fields.update({key: str(value) for key, value in values.items()})
    return {f"offers-{index}-{key}": value for key, value in fields.items()}


def remedy_fields(index: int, **values: Any) -> FormData:
    """One remedy inline form as a browser's "Add another Remedy" sends it (the order left at 0)."""
    fields: FormData = {
        "kind": "",
        "order": "0",
        "title": "",
        "message": "",
        "value": "",
        "max_amount": "",
        "cost": "",
        "expires_in_days": "",
        "id": "",
    }
    fields.update({key: str(value) for key, value in values.items()})
    return {f"remedies-{index}-{key}": value for key, value in fields.items()}


def inline_formset(response: Any, prefix: str) -> Any:
    """The rendered inline formset with this prefix (offers, remedies, versions)."""
    formsets = {inline.formset.prefix: inline.formset for inline in response.context["inline_admin_formsets"]}
    return formsets[prefix]


def nothing_written() -> bool:
    return not (
        Policy.objects.exists()
        or OfferTemplate.objects.exists()
        or RemedyTemplate.objects.exists()
        or PolicyVersion.objects.exists()
    )


def form_errors(response: Any) -> Any:
    """The main form's and the inlines' errors, for assertion messages."""
    context = getattr(response, "context", None)
    if not context or "adminform" not in context:
        return f"status {response.status_code}"
    inlines = {
        inline.formset.prefix: (inline.formset.errors, inline.formset.non_form_errors())
        for inline in context["inline_admin_formsets"]
    }
    return {"form": context["adminform"].form.errors, "inlines": inlines}


def policy_url(action: str, *args: Any) -> str:
    return reverse(f"admin:policies_policy_{action}", args=args)


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def late_delivery_form(client: Any, category: Category) -> FormData:
    """The add form filled in with a policy and two offers."""
    data = page_form(client.get(policy_url("add")), "policy_form")
    data.update(
        {
            "name": "Late delivery credit",
            "slug": "late-delivery-credit",
            "priority": "70",
            "categories": [str(category.pk)],
            "faults": ["company", "third_party"],
            "monthly_cap": "500.00",
        }
    )
    data.update(offer_fields(0, kind=OfferKind.FIXED_CREDIT, title="{amount} {currency} credit", value="10.00"))
    data.update(
        offer_fields(
            1,
            kind=OfferKind.PERCENT_DISCOUNT,
            title="{value}% off your next order",
            message="{customer_name}, sorry about the {incident}.",
            value="15",
            max_amount="30.00",
        )
    )
    data["offers-TOTAL_FORMS"] = "2"
    return data


@pytest.fixture
def late_delivery(db: None) -> Category:
    return CategoryFactory(slug="late_delivery", name="late delivery")


@pytest.fixture
def admin_policy(admin_client: Any, late_delivery: Category) -> Policy:
    """A policy created through the admin add view, as an admin would."""
    response = admin_client.post(policy_url("add"), late_delivery_form(admin_client, late_delivery))
    assert response.status_code == 302, form_errors(response)
    return Policy.objects.get(slug="late-delivery-credit")


# --- Creating and editing a policy -----------------------------------------------------


def test_add_page_has_one_empty_offer_and_no_history_yet(admin_client: Any) -> None:
    response = admin_client.get(policy_url("add"))
    data = page_form(response, "policy_form")

    assert data["offers-TOTAL_FORMS"] == "1"  # one empty offer to fill in
    assert data["offers-INITIAL_FORMS"] == "0"
    assert "versions-TOTAL_FORMS" not in data  # a new policy has no history
    assert "Version history" not in response.content.decode()


def test_add_page_explains_the_remedy_before_the_offers_and_offers_only_its_kinds(admin_client: Any) -> None:
    response = admin_client.get(policy_url("add"))
    data = page_form(response, "policy_form")
    content = response.content.decode()

    assert data["remedies-TOTAL_FORMS"] == "0"  # most policies need none; "Add another" adds one
    assert data["placement"] == Placement.RANKED
    assert content.index('id="remedies-group"') < content.index('id="offers-group"')
    heading = "Remedy: what we put right first, whatever the customer chooses"
    assertContains(response, f'<h2 id="remedies-heading" class="inline-heading">{heading}</h2>', html=True)
    assertContains(response, "Given once per incident with its first recorded outcome, never ranked, never limited by")
    assertContains(response, "a manager approves it when it costs more than the agent may give")
    kinds = [value for value, _label in inline_formset(response, "remedies").empty_form.fields["kind"].choices]
    assert [k for k in kinds if k] == list(REMEDY_KINDS)


def test_policy_created_in_the_admin_has_its_offers_and_version_1(
    admin_client: Any, admin_user: Any, late_delivery: Category
) -> None:
    response = admin_client.post(policy_url("add"), late_delivery_form(admin_client, late_delivery), follow=True)

    assert response.redirect_chain[-1][0] == policy_url("changelist")
    assert any("was added successfully" in m for m in messages_of(response))
    assert "Saved as version 1." in messages_of(response)
    policy = Policy.objects.get(slug="late-delivery-credit")
    assert policy.name == "Late delivery credit"
    assert policy.priority == 70
    assert list(policy.categories.values_list("slug", flat=True)) == ["late_delivery"]
    assert policy.faults == ["company", "third_party"]
    assert policy.monthly_cap == Decimal("500.00")
    offers = list(policy.offers.order_by("order"))
    assert [o.order for o in offers] == [0, 1]  # numbered in the order shown, not all 0
    assert [(o.kind, o.value, o.max_amount) for o in offers] == [
        (OfferKind.FIXED_CREDIT, Decimal("10.00"), None),
        (OfferKind.PERCENT_DISCOUNT, Decimal("15.00"), Decimal("30.00")),
    ]
    assert offers[1].message == "{customer_name}, sorry about the {incident}."
    assert policy.version == 1
    version = PolicyVersion.objects.get(policy=policy)
    assert version.number == 1
    assert version.changes == ["created"]
    assert version.reason == "created in the admin"
    assert version.created_by == admin_user
    assert [o["kind"] for o in version.snapshot["offers"]] == ["fixed_credit", "percent_discount"]


def test_editing_an_offer_saves_version_2_with_what_changed(admin_client: Any, admin_policy: Policy) -> None:
    url = policy_url("change", admin_policy.pk)
    data = page_form(admin_client.get(url), "policy_form")
    assert data["offers-INITIAL_FORMS"] == "2"
    assert data["versions-INITIAL_FORMS"] == "1"
    assert data["offers-0-value"] == "10.00"

    data["offers-0-value"] = "12.50"
    response = admin_client.post(url, data, follow=True)

    assert response.status_code == 200
    assert "Saved as version 2." in messages_of(response)
    admin_policy.refresh_from_db()
    assert admin_policy.version == 2
    assert admin_policy.offers.get(kind=OfferKind.FIXED_CREDIT).value == Decimal("12.50")
    latest = admin_policy.versions.order_by("-number").first()
    assert latest.number == 2
    assert latest.reason == "edited in the admin"
    assert latest.changes == ["Offer 1 (fixed credit): value 10.00 → 12.50"]


def test_saving_without_changes_keeps_the_version(admin_client: Any, admin_policy: Policy) -> None:
    url = policy_url("change", admin_policy.pk)
    response = admin_client.post(url, page_form(admin_client.get(url), "policy_form"), follow=True)

    assert response.status_code == 200
    assert not any("Saved as version" in m for m in messages_of(response))
    admin_policy.refresh_from_db()
    assert admin_policy.version == 1
    assert admin_policy.versions.count() == 1


def test_deleting_an_offer_in_the_admin_is_a_new_version(admin_client: Any, admin_policy: Policy) -> None:
    url = policy_url("change", admin_policy.pk)
    data = page_form(admin_client.get(url), "policy_form")
    data["offers-1-DELETE"] = "on"

    response = admin_client.post(url, data)

    assert response.status_code == 302, form_errors(response)
    assert list(admin_policy.offers.values_list("kind", flat=True)) == [OfferKind.FIXED_CREDIT]
    admin_policy.refresh_from_db()
    assert admin_policy.version == 2
    assert admin_policy.versions.get(number=2).changes == [
        'Offer 2 (percent discount) removed: "{value}% off your next order"'
    ]


INVALID_OFFERS = [
    pytest.param(
        {"kind": OfferKind.PERCENT_DISCOUNT, "title": "{value}% off", "value": "150", "max_amount": "30"},
        "value",
        "must be between 0 and 100 for percent_discount",
        id="percent-over-100",
    ),
    pytest.param(
        {"kind": OfferKind.ESCALATION, "title": "A senior manager will call you"},
        "cost",
        "is required for escalation",
        id="escalation-without-cost",
    ),
    pytest.param(
        {"kind": OfferKind.FIXED_CREDIT, "title": "{foo} credit", "value": "10"},
        "title",
        "unknown placeholder {foo}",
        id="unknown-placeholder",
    ),
    pytest.param(
        {"kind": OfferKind.FIXED_CREDIT, "title": "Credit", "value": "10", "max_amount": "5"},
        "max_amount",
        "applies only to percent kinds",
        id="max-amount-on-credit",
    ),
]


@pytest.mark.parametrize(("offer", "field", "message"), INVALID_OFFERS)
def test_invalid_offer_on_add_shows_the_error_and_saves_nothing(
    admin_client: Any, late_delivery: Category, offer: FormData, field: str, message: str
) -> None:
    data = late_delivery_form(admin_client, late_delivery)
    data.update(offer_fields(1, **offer))

    response = admin_client.post(policy_url("add"), data)

    # The form again with its errors, as 400 Bad Request: not a redirect, nothing saved.
    assertContains(response, message, status_code=400)
    assertContains(response, "Please correct the error", status_code=400)
    offer_formset = inline_formset(response, "offers")
    assert offer_formset.errors[0] == {}
    assert any(message in error for error in offer_formset.errors[1][field])
    assert nothing_written()


@pytest.mark.parametrize(("offer", "field", "message"), INVALID_OFFERS)
def test_invalid_offer_on_change_shows_the_error_and_keeps_the_policy(
    admin_client: Any, admin_policy: Policy, offer: FormData, field: str, message: str
) -> None:
    url = policy_url("change", admin_policy.pk)
    data = page_form(admin_client.get(url), "policy_form")
    data["priority"] = "90"
    data.update({key: value for key, value in offer_fields(1, **offer).items() if not key.endswith("-id")})

    response = admin_client.post(url, data)

    assertContains(response, message, status_code=400)
    admin_policy.refresh_from_db()
    assert admin_policy.priority == 70
    assert admin_policy.version == 1
    assert admin_policy.versions.count() == 1
    assert admin_policy.offers.get(order=1).kind == OfferKind.PERCENT_DISCOUNT


def test_invalid_policy_field_shows_the_error_and_saves_nothing(admin_client: Any, late_delivery: Category) -> None:
    data = late_delivery_form(admin_client, late_delivery)
    data.update({"severity_min": "4", "severity_max": "2", "priority": "150"})

    response = admin_client.post(policy_url("add"), data)

    assert response.status_code == 400
    errors = response.context["adminform"].form.errors
    assert errors["severity_max"] == ["must be at least severity_min (4), got 2"]
    assert errors["priority"] == ["must be between 0 and 100, got 150"]
    assert not Policy.objects.exists()


# --- Remedy and placement ----------------------------------------------------------------


def billing_error_form(client: Any, category: Category) -> FormData:
    """The add form of a lead policy that refunds the double charge first, then offers a credit."""
    data = late_delivery_form(client, category)
    data.update({"name": "Double charge refund", "slug": "double-charge-refund", "placement": Placement.LEAD})
    data.update(
        remedy_fields(
            0,
            kind=OfferKind.REFUND,
            title="Your {money} back",
            message="{first_name}, I've refunded the full {money} to your card.",
            value="100",
            max_amount="800.00",
        )
    )
    data.update(remedy_fields(1, kind=OfferKind.FREE_SHIPPING, title="Free shipping on us", value="6.00"))
    data["remedies-TOTAL_FORMS"] = "2"
    return data


def test_policy_with_a_remedy_created_and_edited_in_the_admin_is_versioned(
    admin_client: Any, late_delivery: Category
) -> None:
    response = admin_client.post(policy_url("add"), billing_error_form(admin_client, late_delivery), follow=True)

    assert response.redirect_chain, form_errors(response)
    assert "Saved as version 1." in messages_of(response)
    policy = Policy.objects.get(slug="double-charge-refund")
    assert policy.placement == Placement.LEAD
    remedies = list(policy.remedies.order_by("order"))
    assert [r.order for r in remedies] == [0, 1]  # both posted as 0, numbered in the order shown
    assert [(r.kind, r.value, r.max_amount) for r in remedies] == [
        (OfferKind.REFUND, Decimal("100.00"), Decimal("800.00")),
        (OfferKind.FREE_SHIPPING, Decimal("6.00"), None),
    ]
    assert remedies[0].message == "{first_name}, I've refunded the full {money} to your card."
    assert policy.offers.count() == 2  # the offers are kept apart from the remedy
    version = policy.versions.get()
    assert version.snapshot["placement"] == "lead"
    assert [(r["kind"], r["title"]) for r in version.snapshot["remedy"]] == [
        ("refund", "Your {money} back"),
        ("free_shipping", "Free shipping on us"),
    ]

    url = policy_url("change", policy.pk)
    data = page_form(admin_client.get(url), "policy_form")
    assert data["remedies-INITIAL_FORMS"] == "2"
    assert data["remedies-0-value"] == "100.00"
    data["remedies-0-value"] = "50"
    data["remedies-1-DELETE"] = "on"
    response = admin_client.post(url, data, follow=True)

    assert "Saved as version 2." in messages_of(response)
    assert list(policy.remedies.values_list("kind", "value")) == [(OfferKind.REFUND, Decimal("50.00"))]
    changes = policy.versions.get(number=2).changes
    assert changes == [
        "Remedy 1 (refund): value 100.00 → 50.00",
        'Remedy 2 (free shipping) removed: "Free shipping on us"',
    ]


def test_changing_the_placement_in_the_admin_is_a_new_version(admin_client: Any, admin_policy: Policy) -> None:
    url = policy_url("change", admin_policy.pk)
    data = page_form(admin_client.get(url), "policy_form")
    data["placement"] = Placement.LEAD

    response = admin_client.post(url, data)

    assert response.status_code == 302, form_errors(response)
    admin_policy.refresh_from_db()
    assert admin_policy.placement == Placement.LEAD
    assert admin_policy.versions.get(number=2).changes == ["Placement: ranked → lead"]


INVALID_REMEDIES = [
    pytest.param(
        {"kind": OfferKind.ESCALATION, "title": "A senior manager will call you", "cost": "25"},
        "kind",
        id="escalation",
    ),
    pytest.param({"kind": OfferKind.PERSONALIZED_PERK, "title": "{perk_name} on us"}, "kind", id="personalized-perk"),
    pytest.param(
        {"kind": OfferKind.PERCENT_DISCOUNT, "title": "{value}% off", "value": "15", "max_amount": "30"},
        "kind",
        id="percent-discount",
    ),
    pytest.param({"kind": OfferKind.REFUND, "title": "Your {money} back"}, "value", id="refund-without-value"),
    pytest.param({"kind": OfferKind.FIXED_CREDIT, "title": "{money} credit"}, "value", id="credit-without-value"),
]


@pytest.mark.parametrize(("remedy", "field"), INVALID_REMEDIES)
def test_invalid_remedy_on_add_is_400_and_saves_nothing(
    admin_client: Any, late_delivery: Category, remedy: FormData, field: str
) -> None:
    data = billing_error_form(admin_client, late_delivery)
    data.update(remedy_fields(1, **remedy))

    response = admin_client.post(policy_url("add"), data)

    assertContains(response, "Please correct the error", status_code=400)
    remedy_formset = inline_formset(response, "remedies")
    assert remedy_formset.errors[0] == {}
    assert remedy_formset.errors[1][field], remedy_formset.errors
    assert list(remedy_formset.errors[1]) == [field]
    page_form(response, "policy_form", status=400)  # the whole form is shown again, to correct
    assert nothing_written()


def test_invalid_remedy_on_change_is_400_and_keeps_the_policy(admin_client: Any, admin_policy: Policy) -> None:
    url = policy_url("change", admin_policy.pk)
    data = page_form(admin_client.get(url), "policy_form")
    data["priority"] = "90"
    data.update(remedy_fields(0, kind=OfferKind.ESCALATION, title="A senior manager will call you", cost="25"))
    data["remedies-TOTAL_FORMS"] = "1"

    response = admin_client.post(url, data)

    assert response.status_code == 400
    assert inline_formset(response, "remedies").errors[0]["kind"]
    admin_policy.refresh_from_db()
    assert (admin_policy.priority, admin_policy.version, admin_policy.versions.count()) == (70, 1, 1)
    assert not RemedyTemplate.objects.exists()


def test_bad_placement_is_400_and_saves_nothing(admin_client: Any, late_delivery: Category) -> None:
    data = billing_error_form(admin_client, late_delivery)
    data["placement"] = "first"

    response = admin_client.post(policy_url("add"), data)

    assert response.status_code == 400
    assert response.context["adminform"].form.errors["placement"]
    assertContains(response, "first is not one of the available choices", status_code=400)
    assert nothing_written()


# --- The change page ---------------------------------------------------------------------


def test_change_page_shows_the_version_history_newest_first(admin_client: Any) -> None:
    policy = PolicyFactory(name="Goodwill", slug="goodwill", priority=50)
    OfferTemplateFactory(policy=policy, value=Decimal("5.00"))
    policy_version_record(policy=policy, reason="imported")
    policy.priority = 60
    policy.save()
    policy_version_record(policy=policy, reason="edited by hand")

    response = admin_client.get(policy_url("change", policy.pk))

    assertContains(response, '<h2 id="versions-heading" class="inline-heading">Version history</h2>', html=True)
    assertContains(response, '<td class="field-number"><p>1</p></td>', html=True)
    assertContains(response, '<td class="field-number"><p>2</p></td>', html=True)
    assertContains(response, "<li>Priority: 50 → 60</li>", html=True)
    assertContains(response, "edited by hand")
    content = response.content.decode()
    assert content.index("Goodwill v2") < content.index("Goodwill v1")
    assertNotContains(response, 'name="versions-0-number"')  # history is read-only


# --- The changelist ----------------------------------------------------------------------


@pytest.fixture
def listed_policies(db: None) -> dict[str, Any]:
    late = CategoryFactory(slug="late_delivery", name="late delivery")
    damaged = CategoryFactory(slug="damaged_item", name="damaged item")
    credit = PolicyFactory(
        name="Late delivery credit",
        slug="late-credit",
        priority=80,
        monthly_cap=Decimal("500.00"),
        per_customer_cap_30d=Decimal("50.00"),
        categories=[late, damaged],
    )
    for title, value, max_amount in [("{value}% off your next order", 10, 20), ("{value}% off a later order", 5, 10)]:
        OfferTemplateFactory(
            policy=credit, kind=OfferKind.PERCENT_DISCOUNT, title=title, value=value, max_amount=max_amount
        )
    RemedyTemplate.objects.create(policy=credit, kind=OfferKind.FREE_SHIPPING, title="Your shipping back", value=6)
    goodwill = PolicyFactory(
        name="Goodwill escalation",
        slug="goodwill",
        priority=10,
        active=False,
        escalate=True,
        placement=Placement.LEAD,
    )
    OfferTemplateFactory(
        policy=goodwill, kind=OfferKind.ESCALATION, title="A senior manager will call you", value=None, cost=25
    )
    for policy in (credit, goodwill):
        policy_version_record(policy=policy)
    return {"credit": credit, "goodwill": goodwill, "late": late, "damaged": damaged}


def test_changelist_shows_the_policy_columns(admin_client: Any, listed_policies: dict[str, Any]) -> None:
    response = admin_client.get(policy_url("changelist"))

    assert response.status_code == 200
    headers = [capfirst(str(h["text"])) for h in result_headers(response.context["cl"])]
    for header in [
        "Active",
        "Priority",
        "Placement",
        "Categories",
        "Version",
        "Budget this month",  # the month's spend / the monthly budget: compensation's PolicyAdmin
        "Per-customer cap (30 days)",
    ]:
        assert header in headers
    assertContains(response, '<td class="field-category_list">damaged_<wbr>item, late_<wbr>delivery</td>', html=True)
    assertContains(response, '<td class="field-category_list">any</td>', html=True)
    assertContains(response, '<td class="field-version">1</td>', html=True, count=2)
    assertContains(response, "0.00 / 500.00 (0%)")
    assertContains(response, '<td class="field-per_customer_cap_30d">50.00</td>', html=True)
    assertContains(response, '<td class="field-priority">80</td>', html=True)
    assertContains(response, '<td class="field-placement_code">ranked</td>', html=True)
    assertContains(response, '<td class="field-placement_code">lead</td>', html=True)
    assertContains(response, 'alt="False"')  # the inactive policy's icon
    # Highest priority first.
    assert [p.slug for p in response.context["cl"].result_list] == ["late-credit", "goodwill"]


def test_changelist_queries_do_not_grow_with_policies(
    admin_client: Any, django_assert_max_num_queries: Any, late_delivery: Category
) -> None:
    for _ in range(15):
        policy = PolicyFactory(categories=[late_delivery])
        OfferTemplateFactory(policy=policy)

    with django_assert_max_num_queries(7):
        response = admin_client.get(policy_url("changelist"))

    assert len(response.context["cl"].result_list) == 15


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(lambda o: {"active__exact": "1"}, ["late-credit"], id="active"),
        pytest.param(lambda o: {"active__exact": "0"}, ["goodwill"], id="inactive"),
        pytest.param(lambda o: {"escalate__exact": "1"}, ["goodwill"], id="escalates"),
        pytest.param(lambda o: {"categories__id__exact": o["damaged"].pk}, ["late-credit"], id="category"),
        # Two matching offers, one row.
        pytest.param(lambda o: {"offers__kind__exact": "percent_discount"}, ["late-credit"], id="offer-kind"),
        pytest.param(lambda o: {"offers__kind__exact": "refund"}, [], id="offer-kind-none"),
        pytest.param(lambda o: {"remedies__kind__exact": "free_shipping"}, ["late-credit"], id="remedy-kind"),
        pytest.param(lambda o: {"remedies__kind__exact": "refund"}, [], id="remedy-kind-none"),
        pytest.param(lambda o: {"placement__exact": "lead"}, ["goodwill"], id="placement"),
        pytest.param(lambda o: {"q": "shipping back"}, ["late-credit"], id="search-remedy-title"),
        pytest.param(lambda o: {"q": "goodwill"}, ["goodwill"], id="search-name"),
        pytest.param(lambda o: {"q": "late-credit"}, ["late-credit"], id="search-slug"),
        pytest.param(lambda o: {"q": "order"}, ["late-credit"], id="search-offer-title"),
        pytest.param(lambda o: {"q": "senior manager"}, ["goodwill"], id="search-two-words"),
        pytest.param(lambda o: {"q": "nothing-like-this"}, [], id="search-miss"),
    ],
)
def test_changelist_filters_and_search(
    admin_client: Any, listed_policies: dict[str, Any], query: Any, expected: list[str]
) -> None:
    response = admin_client.get(policy_url("changelist"), query(listed_policies))

    assert response.status_code == 200  # an unknown lookup would redirect to ?e=1
    assert [p.slug for p in response.context["cl"].result_list] == expected


def test_changelist_filters_name_offer_and_remedy_kinds_apart(
    admin_client: Any, listed_policies: dict[str, Any]
) -> None:
    response = admin_client.get(policy_url("changelist"))

    titles = [str(spec.title) for spec in response.context["cl"].filter_specs]
    assert titles == [
        "active",
        "placement",
        "escalate automatically",
        "incident categories",
        "offer kind",
        "remedy kind",
    ]


# --- Actions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "start", "message"),
    [("activate", False, "Activated 1 policy."), ("deactivate", True, "Deactivated 1 policy.")],
)
def test_activation_actions_switch_policies_and_record_a_version(
    admin_client: Any, action: str, start: bool, message: str
) -> None:
    target = PolicyFactory(active=start)
    already = PolicyFactory(active=not start)  # selected too, but already in the wanted state
    for policy in (target, already):
        policy_version_record(policy=policy)

    selected = [target.pk, already.pk]
    response = admin_client.post(
        policy_url("changelist"), {"action": action, "index": "0", "_selected_action": selected}, follow=True
    )

    assert message in messages_of(response)
    target.refresh_from_db()
    already.refresh_from_db()
    assert target.active is not start
    assert already.active is not start
    assert target.version == 2
    assert target.versions.get(number=2).reason == ("activated" if action == "activate" else "deactivated")
    assert already.version == 1


def test_duplicate_action_makes_inactive_copies_with_the_same_offers(
    admin_client: Any, listed_policies: dict[str, Any]
) -> None:
    original = listed_policies["credit"]

    response = admin_client.post(
        policy_url("changelist"), {"action": "duplicate", "index": "0", "_selected_action": [original.pk]}, follow=True
    )

    assert "Created inactive copies: late-credit-copy" in messages_of(response)
    copy = Policy.objects.get(slug="late-credit-copy")
    assert copy.name == "Late delivery credit (copy)"
    assert copy.active is False
    assert copy.version == 1
    assert set(copy.categories.values_list("slug", flat=True)) == {"late_delivery", "damaged_item"}
    assert list(copy.offers.values_list("kind", "title", "value")) == list(
        original.offers.values_list("kind", "title", "value")
    )
    assert list(copy.remedies.values_list("kind", "title", "value")) == [
        (OfferKind.FREE_SHIPPING, "Your shipping back", Decimal("6.00"))
    ]
    original.refresh_from_db()
    assert original.version == 1
    assert original.offers.count() == 2


def test_action_without_selection_changes_nothing(admin_client: Any, listed_policies: dict[str, Any]) -> None:
    response = admin_client.post(policy_url("changelist"), {"action": "deactivate", "index": "0"}, follow=True)

    assert any("Items must be selected" in m for m in messages_of(response))
    assert Policy.objects.filter(active=True).count() == 1


# --- Categories and perks -------------------------------------------------------------------


def test_category_created_in_the_admin(admin_client: Any) -> None:
    url = reverse("admin:policies_category_add")
    data = page_form(admin_client.get(url), "category_form")
    data.update({"slug": "wrong_item", "name": "wrong item"})

    response = admin_client.post(url, data)

    assert response.status_code == 302, form_errors(response)
    category = Category.objects.get(slug="wrong_item")
    assert category.active is True


def test_category_slug_must_be_a_code(admin_client: Any) -> None:
    url = reverse("admin:policies_category_add")
    data = page_form(admin_client.get(url), "category_form")
    data.update({"slug": "Wrong--Item", "name": "wrong item"})

    response = admin_client.post(url, data)

    assertContains(response, "use lowercase letters, digits", status_code=400)
    assert not Category.objects.exists()


def test_category_changelist_counts_policies(admin_client: Any, listed_policies: dict[str, Any]) -> None:
    response = admin_client.get(reverse("admin:policies_category_changelist"))

    assert {c.slug: c._policy_count for c in response.context["cl"].result_list} == {
        "damaged_item": 1,
        "late_delivery": 1,
    }
    assertContains(response, '<td class="field-policy_count">1</td>', html=True, count=2)


@pytest.mark.parametrize(
    ("typed", "saved"),
    [
        ("sports, cooking", ["sports", "cooking"]),
        ("Sports,cooking, ", ["sports", "cooking"]),
        ("", []),
    ],
)
def test_perk_tags_typed_with_commas_are_saved_as_a_list(admin_client: Any, typed: str, saved: list[str]) -> None:
    url = reverse("admin:policies_perk_add")
    data = page_form(admin_client.get(url), "perk_form")
    data.update({"slug": "sports-pass", "name": "Premium Sports Pass", "tags": typed, "cost": "12.00"})

    response = admin_client.post(url, data)

    assert response.status_code == 302, form_errors(response)
    perk = Perk.objects.get(slug="sports-pass")
    assert perk.tags == saved
    assert perk.cost == Decimal("12.00")


def test_perk_change_form_shows_tags_as_text_and_keeps_them(admin_client: Any) -> None:
    perk = PerkFactory(tags=["sports", "cooking"])
    url = reverse("admin:policies_perk_change", args=[perk.pk])
    data = page_form(admin_client.get(url), "perk_form")
    assert data["tags"] == "sports, cooking"

    data["name"] = "Renamed perk"
    response = admin_client.post(url, data)

    assert response.status_code == 302, form_errors(response)
    perk.refresh_from_db()
    assert perk.name == "Renamed perk"
    assert perk.tags == ["sports", "cooking"]


def test_perk_tag_with_a_space_is_rejected(admin_client: Any) -> None:
    url = reverse("admin:policies_perk_add")
    data = page_form(admin_client.get(url), "perk_form")
    data.update({"slug": "climbing", "name": "Climbing day", "tags": "rock climbing, sports", "cost": "30"})

    response = admin_client.post(url, data)

    assertContains(response, "tags are lowercase words without spaces (use - or _), got rock climbing", status_code=400)
    assert not Perk.objects.exists()


# --- Every page loads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:index",
        "admin:policies_policy_changelist",
        "admin:policies_policy_add",
        "admin:policies_category_changelist",
        "admin:policies_category_add",
        "admin:policies_perk_changelist",
        "admin:policies_perk_add",
    ],
)
def test_admin_page_loads(admin_client: Any, listed_policies: dict[str, Any], url_name: str) -> None:
    PerkFactory()

    assert admin_client.get(reverse(url_name)).status_code == 200


@pytest.mark.parametrize("model", [Policy, Category, Perk])
def test_admin_change_page_loads(admin_client: Any, listed_policies: dict[str, Any], model: type) -> None:
    PerkFactory()
    obj = model.objects.first()

    response = admin_client.get(reverse(f"admin:policies_{model._meta.model_name}_change", args=[obj.pk]))

    assert response.status_code == 200
