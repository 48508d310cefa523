"""Every dashboard page, walked from the URL conf as an admin, and the API docs page carry the
Content-Security-Policy and Django's security headers, and hold no inline script, event-handler
attribute or inline style that the policy would block (so the policy can forbid them)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from apps.accounts.principals import principal_for_user
from apps.policies.models import PolicyPack
from apps.releases import services as releases
from apps.releases.models import Environment
from apps.reports.models import AccessReview, AccessReviewItem, Report
from tests.factories.policies import compliant_version, explain_run

pytestmark = pytest.mark.django_db

# Routes answered only to POST (forms' targets, which redirect) or with a download, not a page.
NOT_PAGES = {
    "reports:report_download",
    "reports:release_report",
    "reports:model_report",
    "reports:period_report",
    "reports:review_start",
    "reports:schedule_create",
    "reports:trail_report",
    "reports:schedule_delete",
    "reports:review_decide",
    "reports:review_close",
    "reports:review_report",
    "accounts:logout",
    "accounts:token_revoke",
    "accounts:access_user_create",
    "accounts:access_user_active",
    "accounts:access_team_create",
    "accounts:access_member_add",
    "accounts:access_member_remove",
    "accounts:access_service_account_create",
    "accounts:access_role_grant",
    "accounts:access_role_revoke",
    "registry:version_verify",
    "registry:dataset_verify",
    "registry:version_download",
    "registry:dataset_download",
    "registry:facts_change_decide",
    "evidence:run_cancel",
    "evidence:finding_review",
    "evidence:file_download",
    "evidence:version_evidence_request",
    "evidence:dataset_evidence_request",
    "policies:pack_version_new",
    "policies:binding_new",
    "policies:binding_delete",
    "releases:release_decide",
    "releases:release_cancel",
    "releases:review_close",
    "releases:release_request",
    "deployments:deployment_command",
    "deployments:target_delete",
    "notifications:webhook_action",
    "notifications:webhook_create",
    "audit:export",
}


class InlineCode(HTMLParser):
    """Collects what a strict policy blocks: <script> without src, <style>, on* and style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        self.found += [f"{tag}[{n}]" for n in names if n.startswith("on") or n == "style"]
        self.found += [
            f"{tag}[href=javascript:]" for n, v in attrs if n == "href" and (v or "").startswith("javascript:")
        ]


def dashboard_routes():
    """(qualified name, route) of every route outside /api/."""

    def walk(patterns, prefix="", namespace=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                yield from walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern) and p.name:
                yield f"{namespace}{p.name}", prefix + str(p.pattern)

    return [(name, route) for name, route in walk(get_resolver().url_patterns) if not route.startswith("api/")]


def _deployment(admin, version, make_user):
    """A break-glass release of the version deployed to a production target (a rollout under way)."""
    from apps.deployments import services as deployments

    manager = principal_for_user(make_user("release_manager", username="header-manager"))
    Environment.objects.get_or_create(name="production", defaults={"production": True})
    deployments.target_create(actor=principal_for_user(admin), name="prod-lab", kind="local", environment="production")
    emergency = releases.release_request_create(
        actor=manager,
        model_name=version.model.name,
        number=version.number,
        environment="production",
        justification="header walk",
        change_reference="CHG-1",
        emergency=True,
    )
    return deployments.deployment_start(actor=manager, release_id=emergency.public_id, target="prod-lab")


@pytest.fixture
def world(make_user, team):
    admin = make_user("admin", username="root")
    version = compliant_version()
    explain_run(version)
    training = version.training_datasets.get()
    run = version.evidence_runs.filter(kind="bias").first()
    run.dataset = training  # a real bias report is computed on a dataset (its page links to it)
    run.save(update_fields=["dataset"])
    Environment.objects.get_or_create(name="staging", defaults={"production": False})
    release = releases.release_request_create(
        actor=principal_for_user(admin),
        model_name=version.model.name,
        number=version.number,
        environment="staging",
        justification="header walk",
    )
    deployment = _deployment(admin, version, make_user)
    report = Report.objects.create(  # a report still being generated: its page shows the progress bar
        kind="release",
        title="Release report",
        subject=f"release:{release.public_id}",
        release=release,
        model=release.model,
        owner_team=release.owner_team,
        formats=["pdf"],
        status="running",
        progress=40,
        files={"pdf": {"key": "reports/" + "0" * 32, "sha256": "0" * 64, "size": 1, "name": "r.pdf"}},
    )
    review = AccessReview.objects.create(title="Q4", started_by_name="root")
    AccessReviewItem.objects.create(
        review=review, binding_id=1, subject="user x", subject_key="user:99", role="viewer", scope="everything"
    )
    return {
        "admin": admin,
        "reports:review_list": "/access-reviews/",
        "reports:review_detail": f"/access-reviews/{review.public_id}/",
        "reports:report_list": "/reports/",
        "reports:report_detail": f"/reports/{report.public_id}/",
        "deployments:target_list": "/targets/",
        "deployments:target_edit": f"/targets/{deployment.target.public_id}/",
        "deployments:release_deploy": f"/releases/{release.public_id}/deploy/",
        "deployments:deployment_list": "/deployments/",
        "deployments:deployment_detail": f"/deployments/{deployment.public_id}/",
        "accounts:login": "/login/",
        "accounts:tokens": "/tokens/",
        "accounts:access": "/access/",
        "registry:model_list": "/",
        "registry:model_detail": f"/models/{version.model.name}/",
        "registry:version_detail": f"/models/{version.model.name}/versions/{version.number}/",
        "registry:dataset_list": "/datasets/",
        "registry:dataset_detail": f"/datasets/{training.pk}/",
        "evidence:run_detail": f"/evidence/{run.public_id if hasattr(run, 'public_id') else run.pk}/",
        "policies:pack_list": "/policies/",
        "policies:pack_new": "/policies/new/",
        "policies:pack_detail": f"/policies/{PolicyPack.objects.order_by('name').first().name}/",
        "releases:approval_queue": "/approvals/",
        "releases:release_list": "/releases/",
        "releases:release_detail": f"/releases/{release.public_id if hasattr(release, 'public_id') else release.pk}/",
        "notifications:webhook_list": "/webhooks/",
        "audit:event_list": "/audit/",
        "audit:verify": "/audit/verify/",
    }


def assert_secure_page(response, where: str) -> None:
    assert response.status_code == 200, (where, response.status_code)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy, where
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, where
    assert response["X-Content-Type-Options"] == "nosniff", where
    assert response["Referrer-Policy"] == "same-origin", where
    parser = InlineCode()
    parser.feed(response.content.decode())
    assert parser.found == [], (where, parser.found)


def test_every_dashboard_page_carries_the_policy_and_no_inline_code(client, world):
    client.force_login(world["admin"])
    routes = dashboard_routes()
    pages = {name for name, _ in routes} - NOT_PAGES
    assert pages <= set(world), f"routes with no page in this walk: {sorted(pages - set(world))}"

    for name in sorted(pages):
        url = world[name]
        if name == "accounts:login":
            client.logout()
        response = client.get(url)
        assert_secure_page(response, f"{name} {url}")
        if name == "evidence:run_detail":
            assert b'<svg class="rate-bar" width=' in response.content  # bars sized without a style attribute
        if name == "deployments:deployment_detail":  # the live part it fetches holds no inline code either
            live = client.get(url + "?part=live")
            assert live.status_code == 200 and b"data-live=" in live.content
            parser = InlineCode()
            parser.feed(live.content.decode())
            assert parser.found == [], (name, parser.found)
        if name == "accounts:login":
            client.force_login(world["admin"])


def test_the_error_pages_and_the_api_carry_the_headers(client, make_user, api_client_for):
    client.force_login(make_user())
    missing = client.get("/models/no-such-model/")
    assert missing.status_code == 404 and "Content-Security-Policy" in missing
    api = api_client_for(make_user()).get("/api/v1/models/")
    assert api["Content-Security-Policy"] and api["X-Content-Type-Options"] == "nosniff"


def test_the_api_docs_page_has_no_inline_script_and_serves_its_start_up_script(anon_client):
    page = anon_client.get("/api/v1/docs/")

    assert_secure_page(page, "/api/v1/docs/")
    script = anon_client.get("/api/v1/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content
