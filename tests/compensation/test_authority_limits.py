"""Authority limits by group (README, "Authority limits"): an agent's limit per option and per month is the
highest among their groups that set one, else AGENT_APPROVAL_LIMIT per option and no monthly limit; managers
never need approval. The per-option answer is the 201's ``requires_approval``, with the reason in
``reasons``; the monthly one is made at submission and sends the choice for a manager's approval.
``set_authority_limit`` and the admin set them.
"""

from __future__ import annotations

import contextlib
import io
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from compensation import authority
from compensation.authentication import RoleTokenAuthentication
from compensation.authority import UNLIMITED, Authority, month_chosen_total, user_authority
from compensation.models import AuthorityLimit, Escalation, OutcomeSubmission
from compensation.serializers import offer_set_input_validate
from compensation.services.offer_sets import OfferSetCreated, offer_set_create
from compensation.services.outcomes import outcome_submit
from policies.choices import OfferKind
from policies.index import policy_index_get
from policies.models import Policy
from tests.conftest import postgres_needed
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/offer-sets/"
D = Decimal
CREDIT, SHIPPING, GIFT = D("150.00"), D("40.00"), D("20.00")  # what each option of the pack costs
# A mid-month moment, so every choice of a test falls in one calendar month whatever today is.
MID_MONTH = datetime(2031, 5, 14, 15, 0, tzinfo=UTC)
AWAITING = OutcomeSubmission.Status.AWAITING_APPROVAL
PENDING = OutcomeSubmission.Status.PENDING


@pytest.fixture
def pack(db: None) -> Policy:
    """One policy, three kinds, none asking for approval: a 150.00 credit, free shipping costing 40.00
    and a gift costing 20.00."""
    category = CategoryFactory(slug="late_delivery", name="late delivery")
    policy = PolicyFactory(name="Goodwill", categories=[category], monthly_cap=D("100000.00"))
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=CREDIT, order=0)
    OfferTemplateFactory(
        policy=policy, kind=OfferKind.FREE_SHIPPING, title="Free shipping", value=D("9.00"), cost=SHIPPING, order=1
    )
    OfferTemplateFactory(policy=policy, kind=OfferKind.GIFT, title="A gift", value=D("25.00"), cost=GIFT, order=2)
    return policy


def limit(group: str, per_option: str | None = None, per_month: str | None = None) -> Group:
    """A group with an authority limit (amounts as strings, None for none)."""
    made, _ = Group.objects.get_or_create(name=group)
    AuthorityLimit.objects.create(
        group=made,
        per_option=D(per_option) if per_option is not None else None,
        per_month=D(per_month) if per_month is not None else None,
    )
    return made


def join(user: Any, *groups: Group) -> Any:
    user.groups.add(*groups)
    return type(user).objects.get(pk=user.pk)  # a fresh object: nothing read before is kept on it


def user_named(username: str) -> Any:
    return get_user_model().objects.get(username=username)


def body(external_id: str = "C-1") -> dict[str, Any]:
    return {
        "customer": {"external_id": external_id, "name": "Ada Lovelace", "email": "ada@example.com"},
        "incident": {"category": "late_delivery", "severity": 3, "order_value": "80.00"},
    }


def created(client: Any, data: dict[str, Any]) -> dict[str, Any]:
    response = client.post(URL, data, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def by_kind(offer_set: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(o for o in offer_set["options"] if o["kind"] == kind)


def choose(client: Any, offer_set: dict[str, Any], kind: str) -> dict[str, Any]:
    response = client.post(
        f"{URL}{offer_set['id']}/outcome/", {"choice": by_kind(offer_set, kind)["label"]}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()


def set_for(user: Any, external_id: str, *, now: datetime) -> OfferSetCreated:
    """An offer set made by the service at ``now``, as the API would make it."""
    index = policy_index_get()
    data = offer_set_input_validate(body(external_id), index=index)
    return offer_set_create(user=user, index=index, customer=data["customer"], incident=data["incident"], now=now)


def submit(user: Any, offer_set: OfferSetCreated, kind: str, *, now: datetime) -> OutcomeSubmission:
    label = next(o.label for o in offer_set.offers if o.kind == kind)
    return outcome_submit(user=user, offer_set_id=offer_set.offer_set.pk, choice=label, now=now)


@pytest.fixture
def agent_user(make_user: Any) -> Any:
    user, _ = make_user("agent-1", "agent")
    return user


# --- Whose limit is what ----------------------------------------------------------------------------


def test_an_agent_in_no_group_with_a_limit_has_the_default_per_option_and_no_monthly_limit(
    agent_user: Any, settings: Any
) -> None:
    settings.AGENT_APPROVAL_LIMIT = D("120.00")
    limit("a-group-the-agent-is-not-in", "900.00", "9000.00")

    assert user_authority(agent_user) == Authority(per_option=D("120.00"), per_month=None)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ([("tier-1", "100.00", "1000.00")], ("100.00", "1000.00")),
        # Two groups: the highest of each wins, even from different groups.
        ([("tier-1", "100.00", "1000.00"), ("tier-2", "250.00", None)], ("250.00", "1000.00")),
        ([("tier-1", "300.00", "500.00"), ("tier-2", "250.00", "2500.00")], ("300.00", "2500.00")),
        # A group with a monthly limit only: the per-option limit stays the default.
        ([("monthly", None, "750.00")], ("100.00", "750.00")),
        # A group's per-option limit may be below the default: it is the agent's limit then.
        ([("trainees", "25.00", None)], ("25.00", None)),
        ([("zero", "0.00", "0.00")], ("0.00", "0.00")),
    ],
)
def test_an_agents_limits_are_the_highest_of_their_groups_that_set_one(
    agent_user: Any, settings: Any, groups: list[tuple[str, str | None, str | None]], expected: tuple
) -> None:
    settings.AGENT_APPROVAL_LIMIT = D("100.00")
    user = join(agent_user, *(limit(*group) for group in groups))

    per_option, per_month = expected
    assert user_authority(user) == Authority(D(per_option), D(per_month) if per_month else None)


def test_managers_and_superusers_never_need_approval_whatever_their_groups_say(make_user: Any) -> None:
    manager, _ = make_user("manager-1", "manager")
    boss, _ = make_user("boss", "agent")
    boss.is_superuser = True
    boss.save()
    tight = limit("tight", "1.00", "1.00")

    assert user_authority(join(manager, tight)) == UNLIMITED
    assert user_authority(join(boss, tight)) == UNLIMITED


def test_the_token_brings_the_same_limits_as_asking_the_database(make_user: Any, settings: Any) -> None:
    settings.AGENT_APPROVAL_LIMIT = D("100.00")
    user, key = make_user("agent-1", "agent")
    join(user, limit("tier-1", "99.99", None), limit("tier-2", "12.34", "1234.56"))

    with CaptureQueriesContext(connection) as queries:
        authenticated, _ = RoleTokenAuthentication().authenticate_credentials(key)
        read_with_the_token = user_authority(authenticated)
    asked = user_authority(type(user).objects.get(pk=user.pk))

    assert read_with_the_token == asked == Authority(D("99.99"), D("1234.56"))
    assert len(queries) == 1  # the token, the user, its role and its limits: one statement


def test_a_change_to_a_groups_limit_holds_from_the_next_request(pack: Policy, client_for: Any) -> None:
    agent = client_for("agent", "agent-1")
    user = join(user_named("agent-1"), limit("tier-1", "100.00"))
    assert by_kind(created(agent, body("C-1")), "fixed_credit")["requires_approval"] is True

    AuthorityLimit.objects.filter(group__name="tier-1").update(per_option=D("150.00"))

    assert by_kind(created(agent, body("C-2")), "fixed_credit")["requires_approval"] is False
    assert user.groups.filter(name="tier-1").exists()


# --- Per option: the 201 says which options need approval, and why -----------------------------------


def test_the_201_says_an_option_above_the_default_limit_needs_approval_and_why(
    pack: Policy, client_for: Any, settings: Any
) -> None:
    settings.AGENT_APPROVAL_LIMIT = D("100.00")
    offer_set = created(client_for("agent", "agent-1"), body())

    credit = by_kind(offer_set, "fixed_credit")
    assert credit["requires_approval"] is True
    assert "needs a manager's approval: costs 150.00, above your limit of 100.00 per option" in credit["reasons"]
    for kind in ("free_shipping", "gift"):
        option = by_kind(offer_set, kind)
        assert option["requires_approval"] is False
        assert not any("approval" in reason for reason in option["reasons"])


def test_an_agent_in_a_group_with_a_higher_limit_may_give_the_costly_option_without_approval(
    pack: Policy, client_for: Any, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent = client_for("agent", "agent-1")
    join(user_named("agent-1"), limit("senior", "200.00"))
    offer_set = created(agent, body())
    credit = by_kind(offer_set, "fixed_credit")

    assert credit["requires_approval"] is False
    assert not any("approval" in reason for reason in credit["reasons"])
    with django_capture_on_commit_callbacks(execute=True):
        data = choose(agent, offer_set, "fixed_credit")
    assert data["outcome_status"] == PENDING
    assert not Escalation.objects.exists()
    assert OutcomeSubmission.objects.get().status == OutcomeSubmission.Status.RECORDED


def test_a_group_limit_below_the_default_holds_an_agent_to_it(pack: Policy, client_for: Any) -> None:
    agent = client_for("agent", "agent-1")
    join(user_named("agent-1"), limit("trainees", "30.00"))
    offer_set = created(agent, body())

    shipping = by_kind(offer_set, "free_shipping")
    assert shipping["requires_approval"] is True
    assert "needs a manager's approval: costs 40.00, above your limit of 30.00 per option" in shipping["reasons"]
    assert by_kind(offer_set, "gift")["requires_approval"] is False
    choose(agent, offer_set, "free_shipping")
    approval = Escalation.objects.get(kind="approval")
    assert "above agent-1's limit of 30.00 per option" in approval.reason


def test_an_approval_says_which_rule_held_the_choice_when_the_limit_rose_after_the_options(
    pack: Policy, client_for: Any
) -> None:
    """The option was shown needing approval (above 30.00); the limit is 50.00 by the time it is chosen: the
    shown answer holds, and the manager reads why, not that the policy asks (it does not)."""
    agent = client_for("agent", "agent-1")
    trainees = limit("trainees", "30.00")
    join(user_named("agent-1"), trainees)
    offer_set = created(agent, body())
    assert by_kind(offer_set, "free_shipping")["requires_approval"] is True
    AuthorityLimit.objects.filter(group=trainees).update(per_option=D("50.00"))

    choose(agent, offer_set, "free_shipping")

    reason = Escalation.objects.get(kind="approval").reason
    assert "costs 40.00 USD, above agent-1's limit per option when the options were made" in reason
    assert "policy" not in reason


def test_an_offer_whose_policy_asks_for_approval_says_so_for_agents_and_managers(pack: Policy, client_for: Any) -> None:
    gift = pack.offers.get(kind=OfferKind.GIFT)
    gift.requires_approval = True
    gift.save()
    words = "needs a manager's approval: its policy asks for a manager's approval of this offer"

    for client in (client_for("agent", "agent-1"), client_for("manager", "manager-1")):
        option = by_kind(created(client, body()), "gift")
        assert option["requires_approval"] is True
        assert words in option["reasons"]


def test_a_managers_set_needs_no_approval_for_any_cost(pack: Policy, client_for: Any) -> None:
    manager = client_for("manager", "manager-1")
    join(user_named("manager-1"), limit("tight", "1.00"))

    offer_set = created(manager, body())

    assert [o["requires_approval"] for o in offer_set["options"]] == [False, False, False]


def test_reading_the_limits_costs_an_offer_set_post_no_extra_query(pack: Policy, client_for: Any) -> None:
    agent = client_for("agent", "agent-1")
    created(agent, body("C-warm"))  # builds the policy index
    with CaptureQueriesContext(connection) as without:
        created(agent, body("C-1"))
    join(
        user_named("agent-1"),
        limit("tier-1", "200.00", "5000.00"),
        limit("tier-2", "120.00"),
    )
    with CaptureQueriesContext(connection) as with_limits:
        data = created(agent, body("C-2"))

    assert by_kind(data, "fixed_credit")["requires_approval"] is False  # the group's 200.00 counted
    assert len(with_limits) == len(without)


# --- Per month: checked at submission ------------------------------------------------------------


def agent_with_monthly(client_for: Any, per_month: str, per_option: str | None = "500.00") -> tuple[Any, Any]:
    client = client_for("agent", "agent-1")
    user = user_named("agent-1")
    return client, join(user, limit("monthly", per_option, per_month))


def test_a_choice_that_takes_an_agent_past_their_monthly_limit_waits_for_a_manager(
    pack: Policy, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent, _ = agent_with_monthly(client_for, "100.00")
    with time_machine.travel(MID_MONTH, tick=True):
        sets = [created(agent, body(f"C-{n}")) for n in range(4)]
        with django_capture_on_commit_callbacks(execute=True):
            first = choose(agent, sets[0], "free_shipping")  # 40.00
            second = choose(agent, sets[1], "free_shipping")  # 80.00
        third = choose(agent, sets[2], "free_shipping")  # 120.00: past 100.00
        declined = agent.post(f"{URL}{sets[3]['id']}/outcome/", {"choice": "declined"}, format="json")

    assert [first["outcome_status"], second["outcome_status"], third["outcome_status"]] == [
        PENDING,
        PENDING,
        AWAITING,
    ]
    assert by_kind(sets[2], "free_shipping")["requires_approval"] is False  # the 201 answers per option only
    approval = Escalation.objects.get(kind="approval")
    assert str(approval.offer_set_id) == sets[2]["id"]
    assert (
        "with it, agent-1's chosen options in 2031-05 come to 120.00 USD, above their monthly limit of 100.00"
        in approval.reason
    )
    assert "per option" not in approval.reason  # the option alone is within the agent's limit
    assert declined.status_code == 202
    assert declined.json()["outcome_status"] == PENDING  # declines cost nothing


def test_the_monthly_limit_counts_pending_waiting_and_recorded_choices_but_not_rejected_ones(
    pack: Policy, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent, user = agent_with_monthly(client_for, "100.00", per_option="100.00")
    manager = client_for("manager", "manager-1")
    with time_machine.travel(MID_MONTH, tick=True):
        sets = [created(agent, body(f"C-{n}")) for n in range(5)]
        with django_capture_on_commit_callbacks(execute=True):
            choose(agent, sets[0], "free_shipping")  # recorded: 40.00
        choose(agent, sets[1], "gift")  # pending: 60.00
        assert choose(agent, sets[2], "fixed_credit")["outcome_status"] == AWAITING  # 150.00 per option: 210.00
        assert month_chosen_total(user=user, now=MID_MONTH) == D("210.00")
        assert choose(agent, sets[3], "gift")["outcome_status"] == AWAITING  # 230.00 > 100.00

        for approval in Escalation.objects.filter(kind="approval"):
            response = manager.post(f"/api/v1/escalations/{approval.pk}/reject/", {"reason": "no"}, format="json")
            assert response.status_code == 200
        assert month_chosen_total(user=user, now=MID_MONTH) == D("60.00")  # rejected ones are not counted

        # 60.00 + 40.00 is the limit exactly: within it.
        assert choose(agent, sets[4], "free_shipping")["outcome_status"] == PENDING
        assert month_chosen_total(user=user, now=MID_MONTH) == D("100.00")


def test_an_agent_without_a_monthly_limit_is_never_held_by_one(
    pack: Policy, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent = client_for("agent", "agent-1")
    with time_machine.travel(MID_MONTH, tick=True):
        sets = [created(agent, body(f"C-{n}")) for n in range(4)]
        statuses = [choose(agent, offer_set, "free_shipping")["outcome_status"] for offer_set in sets]

    assert statuses == [PENDING] * 4  # 160.00 in the month, and no limit to pass
    assert not Escalation.objects.exists()


def test_a_manager_is_never_held_by_a_monthly_limit_of_their_groups(
    pack: Policy, client_for: Any, make_user: Any
) -> None:
    manager = client_for("manager", "manager-1")
    join(user_named("manager-1"), limit("tight", "1.00", "1.00"))
    with time_machine.travel(MID_MONTH, tick=True):
        sets = [created(manager, body(f"C-{n}")) for n in range(3)]
        statuses = [choose(manager, offer_set, "fixed_credit")["outcome_status"] for offer_set in sets]

    assert statuses == [PENDING] * 3
    assert not Escalation.objects.exists()


def test_the_month_is_the_calendar_month_in_time_zone(pack: Policy, agent_user: Any, settings: Any) -> None:
    settings.TIME_ZONE = "America/New_York"
    new_york = ZoneInfo("America/New_York")
    user = join(agent_user, limit("monthly", "500.00", "100.00"))
    last_evening = datetime(2031, 3, 31, 23, 30, tzinfo=new_york)  # already April 1st in UTC
    first_night = datetime(2031, 4, 1, 0, 30, tzinfo=new_york)

    march = submit(user, set_for(user, "C-1", now=last_evening), "free_shipping", now=last_evening)
    march_again = submit(user, set_for(user, "C-2", now=last_evening), "free_shipping", now=last_evening)
    april = submit(user, set_for(user, "C-3", now=first_night), "free_shipping", now=first_night)
    late_march = last_evening + timedelta(minutes=20)
    over = submit(user, set_for(user, "C-4", now=late_march), "free_shipping", now=late_march)

    # By UTC all four are April's, and the third would pass 100.00; by New York's calendar it starts April.
    assert [march.status, march_again.status, april.status, over.status] == [PENDING, PENDING, PENDING, AWAITING]
    assert month_chosen_total(user=user, now=last_evening) == D("120.00")
    assert month_chosen_total(user=user, now=first_night) == D("40.00")
    assert "chosen options in 2031-03 come to 120.00 USD" in Escalation.objects.get().reason


# Measured: the token, the facts, the lock (PostgreSQL), the month's total, the month upsert, the charge and
# the submission, and the savepoints the test's transaction makes of atomic blocks. Without a monthly limit
# PostgreSQL takes its one-statement path (tests/compensation/test_outcomes_api.py pins that one).
MONTHLY_QUERIES_OBSERVED = {"postgresql": 11, "sqlite": 10}


def test_the_monthly_check_costs_a_fixed_few_queries(
    pack: Policy, client_for: Any, django_assert_max_num_queries: Any
) -> None:
    agent, _ = agent_with_monthly(client_for, "1000.00")
    with time_machine.travel(MID_MONTH, tick=True):
        sets = [created(agent, body(f"C-{n}")) for n in range(3)]
        choose(agent, sets[0], "free_shipping")
        choose(agent, sets[1], "free_shipping")
        with django_assert_max_num_queries(MONTHLY_QUERIES_OBSERVED[connection.vendor]):
            choose(agent, sets[2], "free_shipping")


@pytest.mark.django_db(transaction=True)
def test_two_choices_of_one_agent_at_once_cannot_both_slip_under_the_monthly_limit(
    pack: Policy, agent_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each choice alone fits (40 of the 70 left under 90); together they do not. Each submission reads
    the month's total and then waits for the other to read too (up to a second): without the lock per
    agent both read 20.00 and both go through; with it the second reads only after the first commits."""
    postgres_needed("two connections writing at once")
    user = join(agent_user, limit("monthly", "500.00", "90.00"))
    submit(user, set_for(user, "C-0", now=MID_MONTH), "gift", now=MID_MONTH)  # 20.00 spent already
    sets = [set_for(user, f"C-{n}", now=MID_MONTH) for n in (1, 2)]
    both_read = threading.Barrier(2)
    read = authority.month_chosen_total

    def read_then_wait(**kwargs: Any) -> Decimal:
        total = read(**kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):  # the other is waiting for the lock this one holds
            both_read.wait(timeout=1)
        return total

    monkeypatch.setattr(authority, "month_chosen_total", read_then_wait)
    statuses: list[str] = []

    def choose_in_a_thread(offer_set: OfferSetCreated) -> None:
        try:
            statuses.append(submit(user, offer_set, "free_shipping", now=MID_MONTH).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=choose_in_a_thread, args=(offer_set,)) for offer_set in sets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == sorted([PENDING, AWAITING])
    assert month_chosen_total(user=user, now=MID_MONTH) == D("100.00")


# --- set_authority_limit -----------------------------------------------------------------------------


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("set_authority_limit", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def stored(group: str) -> tuple[Decimal | None, Decimal | None] | None:
    row = AuthorityLimit.objects.filter(group__name=group).values_list("per_option", "per_month").first()
    return None if row is None else tuple(row)


def test_set_authority_limit_creates_the_group_and_says_what_it_did(db: None) -> None:
    out, _ = run("senior-agents", "--per-option", "250", "--per-month", "2000.5")

    assert Group.objects.filter(name="senior-agents").exists()
    assert stored("senior-agents") == (D("250.00"), D("2000.50"))
    assert out.splitlines() == [
        "created group 'senior-agents'",
        "authority limit of group 'senior-agents': 250.00 per option, 2000.50 per month",
    ]


def test_set_authority_limit_updates_and_keeps_the_monthly_limit_when_left_out(db: None) -> None:
    run("senior-agents", "--per-option", "250", "--per-month", "2000")

    out, _ = run("senior-agents", "--per-option", "300.00")

    assert stored("senior-agents") == (D("300.00"), D("2000.00"))
    assert out.strip() == "authority limit of group 'senior-agents': 300.00 per option (was 250.00), 2000.00 per month"
    assert Group.objects.filter(name="senior-agents").count() == 1


def test_set_authority_limit_takes_none_and_removes_a_limit_set_to_nothing(db: None) -> None:
    run("monthly", "--per-option", "250", "--per-month", "2000")

    run("monthly", "--per-option", "none")
    assert stored("monthly") == (None, D("2000.00"))

    out, _ = run("monthly", "--per-option", "none", "--per-month", "NONE")
    assert stored("monthly") is None
    assert out.strip() == "group 'monthly' has no authority limit of its own (removed)"
    assert Group.objects.filter(name="monthly").exists()


def test_set_authority_limit_on_an_existing_group_applies_to_its_agents(agent_user: Any) -> None:
    run("agent", "--per-option", "175.00")

    assert user_authority(type(agent_user).objects.get(pk=agent_user.pk)).per_option == D("175.00")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["g", "--per-option", "-1"], "--per-option: -1 is negative"),
        (["g", "--per-option", "lots"], "--per-option: 'lots' is not an amount"),
        (["g", "--per-option", "1.234"], "--per-option: 1.234 has more than 2 decimals"),
        (["g", "--per-option", "NaN"], "--per-option: NaN is not an amount"),
        (["g", "--per-option", "Infinity"], "--per-option: Infinity is not an amount"),
        (["g", "--per-option", "1e12"], "--per-option: 1E+12 is more than the largest amount"),
        (["g", "--per-option", "100", "--per-month", "-0.01"], "--per-month: -0.01 is negative"),
        (["g", "--per-option", "100", "--per-month", ""], "--per-month: '' is not an amount"),
        (["  ", "--per-option", "100"], "group: a group name is required"),
        (["x" * 151, "--per-option", "100"], "group: at most 150 characters"),
    ],
)
def test_set_authority_limit_refuses_a_bad_value_clearly_and_changes_nothing(
    db: None, args: list[str], message: str
) -> None:
    groups_before = set(Group.objects.values_list("name", flat=True))

    with pytest.raises(CommandError) as error:
        run(*args)

    assert message in str(error.value)
    assert "nothing was changed" in str(error.value)
    assert set(Group.objects.values_list("name", flat=True)) == groups_before
    assert not AuthorityLimit.objects.exists()


def test_set_authority_limit_keeps_the_stored_limit_when_refusing(db: None) -> None:
    run("tier-1", "--per-option", "100", "--per-month", "900")

    with pytest.raises(CommandError):
        run("tier-1", "--per-option", "200", "--per-month", "-5")

    assert stored("tier-1") == (D("100.00"), D("900.00"))


def test_set_authority_limit_requires_the_per_option_amount(db: None) -> None:
    with pytest.raises(CommandError, match="--per-option"):
        run("tier-1")


def test_set_authority_limit_notes_that_managers_are_never_held(db: None) -> None:
    _, err = run("manager", "--per-option", "10")

    assert "managers never need approval" in err


# --- The admin ---------------------------------------------------------------------------------------


@pytest.fixture
def superuser_client(client: Any, django_user_model: Any) -> Any:
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_the_admin_lists_authority_limits_and_explains_them(superuser_client: Any) -> None:
    limit("tier-1", "250.00", "2000.00")

    page = superuser_client.get(reverse("admin:compensation_authoritylimit_changelist")).content.decode()
    add_page = superuser_client.get(reverse("admin:compensation_authoritylimit_add")).content.decode()

    assert all(text in page for text in ("tier-1", "250.00", "2000.00"))
    assert "highest among their groups" in add_page


def test_the_admin_adds_a_limit_and_refuses_a_negative_or_empty_one(superuser_client: Any) -> None:
    group = Group.objects.create(name="tier-1")
    url = reverse("admin:compensation_authoritylimit_add")

    negative = superuser_client.post(url, {"group": group.pk, "per_option": "-5", "per_month": ""})
    empty = superuser_client.post(url, {"group": group.pk, "per_option": "", "per_month": ""})
    assert negative.status_code == empty.status_code == 200  # the form again, with the errors
    assert "-5 is negative; a limit is 0 or more" in negative.content.decode()
    assert "Set a limit per option, per month, or both" in empty.content.decode()
    assert not AuthorityLimit.objects.exists()

    done = superuser_client.post(url, {"group": group.pk, "per_option": "120.50", "per_month": ""})
    assert done.status_code == 302
    assert stored("tier-1") == (D("120.50"), None)


def test_a_groups_admin_page_edits_its_authority_limit(superuser_client: Any) -> None:
    group = Group.objects.create(name="tier-1")
    url = reverse("admin:auth_group_change", args=[group.pk])
    page = superuser_client.get(url).content.decode()
    assert "authority limit" in page.lower()
    assert 'name="authority_limit-0-per_option"' in page

    response = superuser_client.post(
        url,
        {
            "name": "tier-1",
            "authority_limit-TOTAL_FORMS": "1",
            "authority_limit-INITIAL_FORMS": "0",
            "authority_limit-MIN_NUM_FORMS": "0",
            "authority_limit-MAX_NUM_FORMS": "1",
            "authority_limit-0-per_option": "",
            "authority_limit-0-per_month": "3000",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert stored("tier-1") == (None, D("3000.00"))
