"""The global policy revision, and the services that version policies.

The revision is what tells every process to rebuild its policy index, so any
write to categories, perks, policies or offers must move it; with a shared
cache the new number is published after commit.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.apps import apps

from policies.choices import OfferKind
from policies.models import Category, OfferTemplate, Perk, Policy, PolicyRevision, PolicyVersion, RemedyTemplate
from policies.selectors import policy_revision_current
from policies.serialization import offer_to_pack
from policies.services import policy_duplicate, policy_revision_bump, policy_set_active, policy_version_record
from tests.factories import CategoryFactory, OfferTemplateFactory, PolicyFactory

pytestmark = pytest.mark.django_db

PER_PROCESS_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def shared_cache(location: str) -> dict:
    # Any backend but locmem counts as shared; a file cache stands in for Redis without needing one.
    return {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": location}}


@pytest.fixture(params=["per-process cache", "shared cache"])
def cache_kind(request, settings, tmp_path) -> str:
    """Run with each way the revision is read: from the database, or from a cache every process shares."""
    settings.CACHES = PER_PROCESS_CACHE if request.param == "per-process cache" else shared_cache(str(tmp_path))
    return request.param


@dataclass
class Rows:
    category: Category
    other_category: Category
    perk: Perk
    policy: Policy
    offer: OfferTemplate


@pytest.fixture
def rows() -> Rows:
    """One of each watched row, written with bulk_create so that no signal has moved the revision yet.

    policy_revision_bump registers a single cache mirror per transaction, and a
    test's transaction never commits; so the write under test has to be the
    transaction's first for its mirror to be captured and run.
    """
    Category.objects.bulk_create(
        [Category(slug="late_delivery", name="Late delivery"), Category(slug="wrong_item", name="Wrong item")]
    )
    Perk.objects.bulk_create([Perk(slug="sports-pass", name="Sports pass", tags=["sports"], cost=Decimal("12"))])
    Policy.objects.bulk_create([Policy(slug="apology", name="Apology")])
    category, other = Category.objects.get(slug="late_delivery"), Category.objects.get(slug="wrong_item")
    policy = Policy.objects.get(slug="apology")
    Policy.categories.through.objects.bulk_create([Policy.categories.through(policy=policy, category=category)])
    OfferTemplate.objects.bulk_create(
        [OfferTemplate(policy=policy, kind=OfferKind.GIFT, title="A gift", value=Decimal("5"))]
    )
    return Rows(category, other, Perk.objects.get(), policy, OfferTemplate.objects.get())


def _saved(obj, **changes):
    for field, value in changes.items():
        setattr(obj, field, value)
    obj.save()


CHANGES: dict[str, Callable[[Rows], object]] = {
    "policy saved": lambda r: _saved(r.policy, name="Renamed"),
    "policy created": lambda r: Policy.objects.create(slug="new-policy", name="New"),
    "offer saved": lambda r: _saved(r.offer, value=Decimal("6")),
    "offer created": lambda r: OfferTemplate.objects.create(
        policy=r.policy, kind=OfferKind.FIXED_CREDIT, title="{amount} credit", value=Decimal("10")
    ),
    "perk saved": lambda r: _saved(r.perk, cost=Decimal("13")),
    "perk created": lambda r: Perk.objects.create(slug="new-perk", name="New", cost=Decimal("1")),
    "category saved": lambda r: _saved(r.category, name="Late"),
    "category created": lambda r: Category.objects.create(slug="new_category", name="New"),
    "policy.categories.add": lambda r: r.policy.categories.add(r.other_category),
    "category.policies.add": lambda r: r.other_category.policies.add(r.policy),
    "policy.categories.remove": lambda r: r.policy.categories.remove(r.category),
    "policy.categories.clear": lambda r: r.policy.categories.clear(),
    "policy.categories.set": lambda r: r.policy.categories.set([r.other_category]),
    "policy deleted": lambda r: r.policy.delete(),
    "offer deleted": lambda r: r.offer.delete(),
    "perk deleted": lambda r: r.perk.delete(),
    "category deleted": lambda r: r.category.delete(),
    "version recorded": lambda r: policy_version_record(policy=r.policy),
}


@pytest.mark.parametrize("change", CHANGES)
def test_revision_moves_on_every_write_to_what_the_engine_compiles(
    cache_kind, rows, django_capture_on_commit_callbacks, change
):
    before = policy_revision_current()

    with django_capture_on_commit_callbacks(execute=True):
        CHANGES[change](rows)

    assert policy_revision_current() > before


@pytest.mark.parametrize("cache_kind", ["per-process cache", "shared cache"], indirect=True)
def test_revision_stays_put_when_policies_are_only_read(cache_kind, rows, django_capture_on_commit_callbacks):
    before = policy_revision_current()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        list(Policy.objects.prefetch_related("categories", "offers"))
        list(Perk.objects.all())
        rows.policy.categories.set([rows.category])  # what it already is
    assert policy_revision_current() == before
    assert callbacks == []


def test_a_shared_cache_drops_the_mirror_at_once_and_publishes_the_new_revision_after_commit(
    settings, tmp_path, rows, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from policies.selectors import REVISION_CACHE_KEY

    settings.CACHES = shared_cache(str(tmp_path))
    before = policy_revision_current()  # now mirrored in the cache
    assert cache.get(REVISION_CACHE_KEY) == before

    with django_capture_on_commit_callbacks() as callbacks:
        _saved(rows.policy, name="Renamed")
        assert PolicyRevision.objects.get(pk=1).number == before + 1
        # Other processes fall back to the committed number in the database until the commit;
        # this transaction's own readers see its change.
        assert cache.get(REVISION_CACHE_KEY) is None
        assert policy_revision_current() == before + 1
        cache.delete(REVISION_CACHE_KEY)
        cache.add(REVISION_CACHE_KEY, before)  # another process re-mirrors the committed number meanwhile

    for callback in callbacks:  # the commit
        callback()
    assert cache.get(REVISION_CACHE_KEY) == before + 1
    assert policy_revision_current() == before + 1


def test_many_writes_in_one_transaction_move_the_revision_once_each_but_publish_it_once(
    settings, tmp_path, rows, django_capture_on_commit_callbacks
):
    settings.CACHES = shared_cache(str(tmp_path))
    before = policy_revision_current()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _saved(rows.policy, name="Renamed")
        _saved(rows.offer, value=Decimal("6"))
        _saved(rows.perk, cost=Decimal("13"))

    assert len(callbacks) == 1
    assert policy_revision_current() == before + 3


def test_revision_is_read_from_the_database_when_the_shared_cache_is_down(
    settings, rows, django_capture_on_commit_callbacks
):
    # Port 1 refuses connections at once: the cache fails fast, and neither reads nor writes fail with it.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    before = policy_revision_current()
    with django_capture_on_commit_callbacks(execute=True):
        _saved(rows.policy, name="Renamed")
    assert policy_revision_current() == before + 1 == PolicyRevision.objects.get(pk=1).number


def test_revision_row_is_recreated_if_missing(settings, rows):
    settings.CACHES = PER_PROCESS_CACHE
    PolicyRevision.objects.all().delete()
    assert policy_revision_current() == 0
    policy_revision_bump()
    assert policy_revision_current() == 1


# --- Versions ------------------------------------------------------------------------------


@pytest.fixture
def policy() -> Policy:
    """A policy in one category with two offers, at version 1."""
    policy = PolicyFactory(slug="apology", name="Apology", categories=[CategoryFactory(slug="late_delivery")])
    OfferTemplateFactory(policy=policy, kind=OfferKind.FIXED_CREDIT, value=Decimal("10"), order=0)
    OfferTemplateFactory(
        policy=policy, kind=OfferKind.PERCENT_DISCOUNT, value=Decimal("20"), max_amount=Decimal("30"), order=1
    )
    assert policy_version_record(policy=policy).number == 1
    return policy


def test_policy_version_record_returns_none_when_nothing_changed(policy):
    assert policy_version_record(policy=policy) is None
    _saved(policy)  # saved again, but the same
    assert policy_version_record(policy=policy, reason="saved in the admin") is None

    policy.refresh_from_db()
    assert policy.version == 1
    assert list(policy.versions.values_list("number", flat=True)) == [1]


VERSIONED_CHANGES: dict[str, tuple[Callable[[Policy], object], str]] = {
    "a field": (lambda p: _saved(p, priority=70), "Priority: 50 → 70"),
    "a condition": (lambda p: _saved(p, severity_min=2), "Condition added: severity at least 2"),
    "a budget": (lambda p: _saved(p, monthly_cap=Decimal("100")), "Budget: monthly budget set to 100.00"),
    "a category": (
        lambda p: p.categories.add(CategoryFactory(slug="wrong_item")),
        "Condition changed: categories late_delivery → late_delivery, wrong_item",
    ),
    "an offer": (
        lambda p: _saved(p.offers.get(order=0), value=Decimal("15")),
        "Offer 1 (fixed credit): value 10.00 → 15.00",
    ),
    "an added offer": (
        lambda p: OfferTemplateFactory(policy=p, kind=OfferKind.GIFT, value=Decimal("1"), order=2),
        'Offer 3 (gift) added: "{amount} {currency} credit", value 1.00',
    ),
    "a deleted offer": (
        lambda p: p.offers.get(order=1).delete(),
        'Offer 2 (percent discount) removed: "{amount} {currency} credit"',
    ),
}


@pytest.mark.parametrize("change", VERSIONED_CHANGES)
def test_policy_version_record_keeps_a_new_version_for_each_change(policy, django_user_model, change):
    apply_change, line = VERSIONED_CHANGES[change]
    apply_change(policy)
    admin = django_user_model.objects.create(username="admin")

    version = policy_version_record(policy=policy, actor=admin, reason="edited")

    assert version.number == 2
    assert version.changes == [line]
    assert (version.created_by, version.reason) == (admin, "edited")
    policy.refresh_from_db()
    assert policy.version == 2
    assert version.snapshot == policy.versions.get(number=2).snapshot


def test_policy_duplicate_makes_an_inactive_copy_with_the_same_offers_at_its_own_version_1(policy):
    _saved(policy, priority=80)
    policy_version_record(policy=policy)  # the original is at version 2

    copy = policy_duplicate(policy=policy)

    assert copy.pk != policy.pk
    assert (copy.slug, copy.name, copy.active) == ("apology-copy", "Apology (copy)", False)
    assert copy.priority == 80
    assert list(copy.categories.values_list("slug", flat=True)) == ["late_delivery"]
    assert [offer_to_pack(o) for o in copy.offers.order_by("order")] == [
        offer_to_pack(o) for o in policy.offers.order_by("order")
    ]
    assert list(copy.offers.values_list("order", "kind")) == list(policy.offers.values_list("order", "kind"))
    assert not set(copy.offers.values_list("pk", flat=True)) & set(policy.offers.values_list("pk", flat=True))
    copy.refresh_from_db()
    assert copy.version == 1
    assert [(v.number, v.changes) for v in copy.versions.all()] == [(1, ["created"])]
    assert "duplicated from apology v2" in copy.versions.get().reason
    policy.refresh_from_db()
    assert (policy.active, policy.version, policy.offers.count()) == (True, 2, 2)


def test_a_duplicate_copies_the_remedy_and_placement(policy):
    policy.placement = "lead"
    policy.save()
    RemedyTemplate.objects.create(policy=policy, kind="refund", title="All back", value=Decimal("100"))

    copy = policy_duplicate(policy=policy)

    assert copy.placement == "lead"
    assert [(r.kind, r.title, r.value) for r in copy.remedies.all()] == [("refund", "All back", Decimal("100.00"))]
    assert copy.versions.get().snapshot["remedy"][0]["title"] == "All back"
    assert policy.remedies.count() == 1


def test_duplicating_twice_gives_distinct_slugs(policy):
    assert policy_duplicate(policy=policy).slug == "apology-copy"
    assert policy_duplicate(policy=policy).slug == "apology-copy-2"


def test_policy_set_active_makes_a_new_version(policy):
    changed = policy_set_active(policies=[policy], active=False, reason="season over")

    assert changed == 1
    policy.refresh_from_db()
    assert (policy.active, policy.version) == (False, 2)
    version = policy.versions.get(number=2)
    assert version.changes == ["Active: yes → no"]
    assert version.reason == "season over"


def test_policy_set_active_skips_policies_already_in_that_state(policy):
    other = PolicyFactory(active=False)
    policy_version_record(policy=other)

    assert policy_set_active(policies=[policy], active=True) == 0
    changed = policy_set_active(policies=[other], active=False)

    assert changed == 0
    assert PolicyVersion.objects.count() == 2
    other.refresh_from_db()
    assert other.version == 1


def test_versions_saved_before_remedies_read_as_ranked_without_remedy_so_saving_again_changes_nothing():
    """Migration 0003 rewrites older snapshots: an unchanged policy then makes no new version on save."""
    migration = importlib.import_module("policies.migrations.0003_remedy_and_placement")
    policy = PolicyFactory()
    policy_version_record(policy=policy)
    version = PolicyVersion.objects.get(policy=policy)
    old = {k: v for k, v in version.snapshot.items() if k not in {"placement", "remedy"}}
    PolicyVersion.objects.filter(pk=version.pk).update(snapshot=old)

    migration.snapshots_with_remedy_and_placement(apps, None)

    snapshot = PolicyVersion.objects.get(pk=version.pk).snapshot
    assert (snapshot["placement"], snapshot["remedy"]) == ("ranked", [])
    assert policy_version_record(policy=policy) is None
