"""A stored decision as one reader sees it: another team's dataset is hidden wherever the decision names it."""

from __future__ import annotations

import copy

import pytest

from apps.accounts.principals import principal_for_user
from apps.policies.disclosure import decision_for_reader
from tests.factories.accounts import TeamFactory
from tests.factories.registry import DatasetFactory

pytestmark = pytest.mark.django_db


def _decision(mine, theirs) -> dict:
    def entry(d, run):
        return {"id": d.pk, "name": d.name, "role": "training", "sha256": d.sha256, "columns": [{"name": "email"}],
                "scrubbed_from": None, "pii_scan": {"run": run, "findings": []}}  # fmt: skip

    return {
        "allow": False,
        "violations": [
            {
                "rule": "gdpr.pii",
                "pack": "gdpr",
                "severity": "blocking",
                "message": f"Training dataset {theirs.name} ({theirs.sha256[:12]}) holds PII; {mine.name} does not",
            },
        ],  # fmt: skip
        "evidence": [
            {"run": "11111111-1111-1111-1111-111111111111", "kind": "pii_scan", "subject": f"dataset {mine.name}"},
            {"run": "22222222-2222-2222-2222-222222222222", "kind": "pii_scan", "subject": f"dataset {theirs.name}"},
        ],
        "input": {
            "version": {"lineage": {"training_datasets": [mine.pk, theirs.pk], "evaluation_dataset": theirs.pk}},
            "datasets": [
                entry(mine, "11111111-1111-1111-1111-111111111111"),
                entry(theirs, "22222222-2222-2222-2222-222222222222"),
            ],
        },
    }


def test_another_team_s_dataset_is_hidden_wherever_the_decision_names_it(make_user):
    # given a viewer of team A, and a decision over A's dataset and B's (names that contain each other)
    a, b = TeamFactory(name="team-a"), TeamFactory(name="team-b")
    mine = DatasetFactory(name="loans", owner_team=a, sha256="a" * 64)
    theirs = DatasetFactory(name="loans-eu", owner_team=b, sha256="b" * 64)
    viewer = principal_for_user(make_user("viewer", team=a))
    decision = _decision(mine, theirs)
    stored = copy.deepcopy(decision)

    # when the viewer reads it
    shown = decision_for_reader(actor=viewer, decision=decision)

    # then B's dataset is named nowhere, by name, digest, id or scan run, and A's still is
    text = str(shown)
    assert "loans-eu" not in text and "b" * 12 not in text and "2222" not in text
    assert shown["violations"][0]["message"] == (
        "Training dataset a dataset you cannot see (hidden) holds PII; loans does not"
    )
    theirs_entry = shown["input"]["datasets"][1]
    assert (theirs_entry["id"], theirs_entry["name"], theirs_entry["columns"], theirs_entry["hidden"]) == (
        None, "a dataset you cannot see", [], True
    )  # fmt: skip
    assert shown["input"]["version"]["lineage"] == {"training_datasets": [mine.pk, None], "evaluation_dataset": None}
    assert shown["evidence"][1] == {"run": None, "kind": "pii_scan", "subject": "dataset a dataset you cannot see",
                                    "hidden": True}  # fmt: skip
    assert shown["input"]["datasets"][0]["name"] == "loans" and shown["evidence"][0]["run"].startswith("1111")
    # and the stored decision is unchanged (outcomes and counts as evaluated)
    assert decision == stored and shown["allow"] is False and len(shown["violations"]) == 1


def test_a_reader_who_sees_every_dataset_gets_the_decision_as_stored(make_user):
    a, b = TeamFactory(name="team-a"), TeamFactory(name="team-b")
    decision = _decision(DatasetFactory(owner_team=a), DatasetFactory(owner_team=b))
    officer = principal_for_user(make_user("compliance_officer"))
    assert decision_for_reader(actor=officer, decision=decision) is decision
