"""Release pages: the version's gate block and request form, the queue, the release page and its forms."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.releases.choices import ReleaseStatus
from apps.releases.models import ReleaseRequest

pytestmark = pytest.mark.django_db

VERSION_PAGE = "/models/churn/versions/1/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_contributor_requests_a_release_from_the_version_page(requester, version, audit_mark, decided):
    decided()
    web = logged_in(requester)
    page = web.get(VERSION_PAGE).content.decode()
    assert 'id="release-gates"' in page and 'id="request-release-form"' in page
    assert "No release requested" in page and "release_required" not in page
    mark = audit_mark()
    response = web.post(
        "/models/churn/versions/1/releases/", {"environment": "staging", "justification": "new features"}
    )
    release = ReleaseRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/releases/{release.public_id}/"
    assert mark.actions() == ["release.requested"]
    page = web.get(response["Location"]).content.decode()
    assert "Pending approval" in page and 'id="rules"' in page and "security" in page
    assert 'id="decide-form"' not in page  # the requester never decides
    assert 'id="cancel-release"' in page


def test_a_refused_request_shows_why_on_the_version_page(requester, version):
    web = logged_in(requester)
    response = web.post("/models/churn/versions/1/releases/", {"environment": "production", "justification": "x"})
    assert response.status_code == 302
    assert "change reference" in web.get(VERSION_PAGE).content.decode()
    assert ReleaseRequest.objects.count() == 0


def test_the_reviewer_finds_it_in_the_queue_and_approves_it(
    request_release, requester, reviewer, version, audit_mark, react
):
    release = request_release(requester, version)
    web = logged_in(reviewer)
    queue = web.get("/approvals/").content.decode()
    assert f'data-release="{release.public_id}"' in queue and "Approval: Reviewer" in queue
    page = web.get(f"/releases/{release.public_id}/").content.decode()
    assert 'id="decide-form"' in page
    mark = audit_mark()
    response = web.post(
        f"/releases/{release.public_id}/decide/", {"decision": "approve", "binding_digest": release.binding_digest}
    )
    assert response.status_code == 302
    assert mark.actions() == ["release.approval_recorded", "release.approved"]
    release.refresh_from_db()
    assert release.status == ReleaseStatus.APPROVED
    assert "Nothing waits for you" in web.get("/approvals/").content.decode()
    react()  # the reactions to the approval make the version's gate decisions
    gates = logged_in(requester).get(VERSION_PAGE).content.decode()
    assert 'badge-success">Allowed<' in gates


def test_a_rejection_without_a_reason_is_refused_on_the_page(request_release, requester, reviewer, version):
    release = request_release(requester, version)
    web = logged_in(reviewer)
    web.post(f"/releases/{release.public_id}/decide/", {"decision": "reject", "comment": ""})
    release.refresh_from_db()
    assert release.status == ReleaseStatus.PENDING_APPROVAL
    assert "needs a reason" in web.get(f"/releases/{release.public_id}/").content.decode()


def test_someone_without_a_role_gets_404s(make_user, request_release, requester, version):
    release = request_release(requester, version)
    web = logged_in(make_user())
    assert web.get(f"/releases/{release.public_id}/").status_code == 404
    assert web.post(f"/releases/{release.public_id}/decide/", {"decision": "approve"}).status_code == 404
    assert "Nothing waits for you" in web.get("/approvals/").content.decode()
    assert str(release.public_id) not in web.get("/releases/").content.decode()


def test_anonymous_is_sent_to_sign_in(client, request_release, requester, version):
    release = request_release(requester, version)
    for path in ("/approvals/", "/releases/", f"/releases/{release.public_id}/"):
        assert client.get(path).status_code == 302


def test_a_break_glass_release_shows_its_banner_and_the_officer_closes_its_review(
    request_release, manager, officer, version, audit_mark
):
    release = request_release(manager, version, emergency=True, justification="outage in checkout")
    page = logged_in(manager).get(f"/releases/{release.public_id}/").content.decode()
    assert 'id="emergency-banner"' in page and "outage in checkout" in page
    web = logged_in(officer)
    assert "Post-release review" in web.get("/approvals/").content.decode()
    mark = audit_mark()
    web.post(f"/releases/{release.public_id}/review/", {"findings": "Root cause fixed."})
    assert mark.actions() == ["post_release_review.closed"]
    assert "Nothing waits for you" in web.get("/approvals/").content.decode()


def test_the_release_list_filters(request_release, requester, reviewer, version):
    release = request_release(requester, version)
    web = logged_in(reviewer)
    assert str(release.public_id) in web.get("/releases/").content.decode()
    assert str(release.public_id) not in web.get("/releases/", {"status": "approved"}).content.decode()
    assert 'href="/approvals/"' in web.get("/releases/").content.decode()


def test_the_inventory_flags_a_model_whose_production_approval_is_due(
    request_release, requester, reviewer, officer, high_version
):
    from datetime import timedelta

    from django.utils import timezone

    from apps.releases import services
    from tests.releases.conftest import who

    release = request_release(requester, high_version, environment="production", change_reference="CHG-7")
    for person in (reviewer, officer):
        services.approval_decide(actor=who(person), release_id=release.public_id, decision="approve")
    web = logged_in(officer)
    assert "revalidation due" not in web.get("/").content.decode()
    ReleaseRequest.objects.filter(pk=release.pk).update(revalidate_at=timezone.now() - timedelta(days=1))
    assert "revalidation due" in web.get("/").content.decode()
