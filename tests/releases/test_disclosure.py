"""The release list shows each stored decision as the reader may see it, with one query for the whole page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories.accounts import TeamFactory
from tests.factories.registry import DatasetFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db

RELEASES = "/api/v1/releases/"


def _release_trained_on(request_release, requester, author, model, number, dataset):
    version = ModelVersionFactory(model=model, number=number, created_by=author)
    version.training_datasets.add(dataset)
    return request_release(requester, version)


def test_another_team_s_training_data_is_hidden_in_the_list_at_a_constant_query_count(
    api_client_for, reviewer, request_release, requester, model, author, team
):
    # given releases of the reviewer's team, trained on their own data and on another team's
    other = DatasetFactory(name="vendor-bureau-data", owner_team=TeamFactory(name="vendor"), sha256="c" * 64)
    own = DatasetFactory(name="credit-applications", owner_team=team, sha256="d" * 64)
    for number in (1, 2):
        _release_trained_on(request_release, requester, author, model, number, other if number == 1 else own)
    rita = api_client_for(reviewer)
    rita.get(RELEASES)  # the token's first use records itself

    # when the reviewer lists them, with two and then with six releases
    with CaptureQueriesContext(connection) as few:
        body = rita.get(RELEASES).json()
    for number in range(3, 7):
        _release_trained_on(request_release, requester, author, model, number, other if number % 2 else own)
    with CaptureQueriesContext(connection) as many:
        more = rita.get(RELEASES).json()

    # then the other team's dataset is hidden and the reviewer's own is named
    text = str(more)
    assert "vendor-bureau-data" not in text and "c" * 64 not in text
    assert "credit-applications" in text and "a dataset you cannot see" in text
    assert body["count"] == 2 and more["count"] == 6
    # and the visibility of every dataset on the page is read once, whatever the page's size
    assert len(many) == len(few)
