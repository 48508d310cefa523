"""Approvals racing each other on PostgreSQL: the row lock admits one at a time, so no request is
approved twice, none skips a required role, and one person never counts twice."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.core.errors import Conflict
from apps.releases import services
from apps.releases.choices import ReleaseStatus
from apps.releases.models import Approval
from tests.releases.conftest import who


def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite lets one writer in at a time, so approvals cannot race there; "
            "this runs on PostgreSQL (DATABASE_URL=postgres://..., as .ci/run does)"
        )


def _race(principals, release) -> tuple[list, list[BaseException]]:
    start = threading.Barrier(len(principals))
    done, errors = [], []

    def approve(principal) -> None:
        try:
            start.wait()
            services.approval_decide(actor=principal, release_id=release.public_id, decision="approve")
            done.append(principal.name)
        except Conflict as exc:
            errors.append(exc)
        except BaseException as exc:  # surfaced by the assertions
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(p,)) for p in principals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done, errors


@pytest.mark.django_db(transaction=True)
def test_many_approvers_at_once_approve_exactly_once_with_every_role(
    request_release, requester, make_user, team, high_version
):
    _postgresql_only()
    # given a high-risk production request needing a reviewer and a compliance officer
    release = request_release(requester, high_version, environment="production", change_reference="CHG-42")
    reviewers = [who(make_user("reviewer", team=team)) for _ in range(4)]
    officers = [who(make_user("compliance_officer")) for _ in range(4)]
    # when all eight approve at the same moment
    done, errors = _race(reviewers + officers, release)
    # then exactly two approvals count, one of them an officer's, and the release was approved once
    release.refresh_from_db()
    assert release.status == ReleaseStatus.APPROVED
    assert len(done) == 2, (done, errors)
    assert all(isinstance(e, Conflict) for e in errors), errors
    live = list(Approval.objects.filter(release=release, void=False))
    assert len(live) == 2
    assert any("compliance_officer" in a.roles for a in live)
    assert services.approval_matching(release, live).complete
    assert AuditEvent.objects.filter(action="release.approved", target_id=str(release.public_id)).count() == 1
    assert AuditEvent.objects.filter(action="release.approval_recorded", target_id=str(release.public_id)).count() == 2


@pytest.mark.django_db(transaction=True)
def test_one_person_in_many_threads_counts_once(request_release, requester, officer, high_version):
    _postgresql_only()
    release = request_release(requester, high_version, environment="production", change_reference="CHG-43")
    # when one compliance officer's approval arrives eight times at once
    done, errors = _race([who(officer)] * 8, release)
    # then one counts, the others are refused, and the release still waits for its second person
    assert len(done) == 1 and len(errors) == 7
    assert all(isinstance(e, Conflict) for e in errors), errors
    release.refresh_from_db()
    assert release.status == ReleaseStatus.PENDING_APPROVAL
    assert Approval.objects.filter(release=release).count() == 1


@pytest.mark.django_db(transaction=True)
def test_requests_racing_for_one_version_and_environment_leave_one_live(request_release, make_user, team, version):
    _postgresql_only()
    # given six contributors asking for the same version in the same environment at the same moment
    requesters = [make_user("contributor", team=team) for _ in range(6)]
    start = threading.Barrier(len(requesters))
    made, refused, other = [], [], []

    def ask(user) -> None:
        try:
            start.wait()
            made.append(request_release(user, version))
        except services.LiveReleaseExists as exc:
            refused.append(exc)
        except BaseException as exc:  # an IntegrityError would be a 500: surfaced below
            other.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(u,)) for u in requesters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then exactly one request exists, and every other asker got the 409 naming it
    assert other == []
    assert len(made) == 1 and len(refused) == 5
    assert all(e.extra["live_release"]["id"] == str(made[0].public_id) for e in refused)
    assert AuditEvent.objects.filter(action="release.requested").count() == 1
