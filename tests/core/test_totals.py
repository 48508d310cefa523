"""List totals cost one bounded query: exact up to the cap, then a table estimate or a floor ("10,000+")."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.core.totals import BoundedPaginator, Total, total_of
from apps.registry.models import RegisteredModel
from tests.factories.registry import RegisteredModelFactory

pytestmark = pytest.mark.django_db


def test_labels_say_exact_floor_or_estimate():
    assert Total(1234).label == "1,234"
    assert Total(10_000, exact=False).label == "10,000+"
    assert Total(1_000_000, exact=False, estimated=True).label == "about 1,000,000"


def test_a_list_below_the_cap_is_counted_exactly():
    # given
    RegisteredModelFactory.create_batch(4)
    # when
    total = total_of(RegisteredModel.objects.filter(name__isnull=False), cap=10)
    # then
    assert total == Total(4)


def test_a_filtered_list_above_the_cap_shows_a_floor():
    # given
    RegisteredModelFactory.create_batch(7)
    # when
    total = total_of(RegisteredModel.objects.filter(name__isnull=False), cap=5)
    # then
    assert total == Total(5, exact=False)
    assert total.label == "5+"


def test_a_list_that_matches_nothing_by_construction_is_zero():
    assert total_of(RegisteredModel.objects.filter(pk__in=[])) == Total(0)


def test_a_whole_table_on_postgresql_above_the_cap_takes_the_planner_estimate():
    if connection.vendor != "postgresql":
        pytest.skip("the row estimate (pg_class.reltuples) is PostgreSQL's; this runs in CI's PostgreSQL pass")
    # given: twelve rows the planner knows about
    RegisteredModelFactory.create_batch(12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE registry_registeredmodel")
    # when
    total = total_of(RegisteredModel.objects.all(), cap=5)
    # then
    assert total == Total(12, exact=False, estimated=True)
    assert total.label == "about 12"


def test_a_whole_table_below_the_cap_is_counted_exactly():
    # given
    RegisteredModelFactory.create_batch(3)
    # when
    total = total_of(RegisteredModel.objects.all())
    # then
    assert total == Total(3)


def test_the_paginator_pages_with_the_bounded_count():
    RegisteredModelFactory.create_batch(3)
    paginator = BoundedPaginator(RegisteredModel.objects.order_by("name"), 2)
    assert paginator.count == 3 and paginator.num_pages == 2
    assert paginator.total.exact


def test_api_lists_say_whether_their_count_is_exact(make_user, api_client_for):
    client = api_client_for(make_user("viewer", username="vera-viewer"))
    body = client.get("/api/v1/models/").json()
    assert body["count_exact"] is True
