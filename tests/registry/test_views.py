"""Registry dashboard pages: inventory, model, version, datasets.

Each renders for a permitted person, is a 404 for an object outside their
scope, and sends anonymous visitors to the sign-in page. Query counts are
pinned so the tables do not grow queries with their rows.
"""

from __future__ import annotations

import pytest

from tests.factories.registry import DatasetFactory, ModelVersionFactory, RegisteredModelFactory

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.fixture
def credit(team):
    """A high-risk credit model with two versions, its training and evaluation data."""
    train = DatasetFactory(
        name="loans-2024-train",
        owner_team=team,
        sha256="a" * 64,
        row_count=120000,
        schema=[
            {"name": "income", "type": "double", "role": "feature"},
            {"name": "age", "type": "int64", "role": "sensitive"},
            {"name": "default", "type": "bool", "role": "label"},
        ],
    )
    evaluation = DatasetFactory(name="loans-2024-eval", owner_team=team, sha256="b" * 64)
    model = RegisteredModelFactory(
        name="credit-scoring",
        owner_team=team,
        risk_tier="high",
        data_categories=["personal", "financial"],
        intended_use="Rank consumer loan applications for manual review.",
    )
    ModelVersionFactory(model=model, number=1, status="retired", sha256="1" * 64)
    version = ModelVersionFactory(
        model=model,
        number=2,
        status="ready",
        sha256=SHA,
        size=6144,
        source_repository="https://git.example.test/credit/scoring",
        source_commit="4f2a9c1",
        ci_run_url="https://ci.example.test/runs/812",
        evaluation_dataset=evaluation,
        metrics={"auc": 0.8731234, "accuracy": 0.91},
        model_card={"training_data": "Loans 2019-2024", "ethical_considerations": "Age is excluded as a feature."},
    )
    version.training_datasets.add(train)
    return model


@pytest.fixture
def marketing(other_team):
    model = RegisteredModelFactory(
        name="campaign-uplift", owner_team=other_team, risk_tier="minimal", data_categories=["personal"]
    )
    ModelVersionFactory(model=model, number=1, status="pending_verification")
    DatasetFactory(name="campaign-clicks", owner_team=other_team)
    return model


@pytest.fixture
def credit_viewer(client, make_user, team):
    """A signed-in viewer of the credit team only."""
    client.force_login(make_user("viewer", team=team))
    return client


@pytest.fixture
def global_viewer(client, make_user):
    client.force_login(make_user("viewer"))
    return client


# ---- anonymous --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_sign_in(client, credit):
    dataset = credit.versions.get(number=2).evaluation_dataset
    for path in (
        "/",
        "/models/credit-scoring/",
        "/models/credit-scoring/versions/2/",
        "/datasets/",
        f"/datasets/{dataset.pk}/",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == f"/login/?next={path}"


# ---- inventory ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_inventory_lists_only_models_in_scope(credit_viewer, credit, marketing):
    response = credit_viewer.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "credit-scoring" in page
    assert "campaign-uplift" not in page
    # risk badge, data categories, version count and the latest version's status
    assert 'class="badge badge-risk-high"' in page
    assert "Personal data" in page and "Financial" in page
    assert 'href="/models/credit-scoring/versions/2/"' in page
    assert 'class="badge badge-status-ready"' in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"credit-scoring", "campaign-uplift"}),
        ("?risk_tier=high", {"credit-scoring"}),
        ("?risk_tier=minimal", {"campaign-uplift"}),
        ("?team=marketing", {"campaign-uplift"}),
        ("?data_category=financial", {"credit-scoring"}),
        ("?data_category=personal", {"credit-scoring", "campaign-uplift"}),
        ("?q=campaign", {"campaign-uplift"}),
        ("?q=nothing-like-this", set()),
        ("?team=credit&risk_tier=minimal", set()),
    ],
)
def test_the_inventory_filters(global_viewer, credit, marketing, query, expected):
    response = global_viewer.get("/" + query)
    assert response.status_code == 200
    names = {m.name for m in response.context["page"]}
    assert names == expected


@pytest.mark.django_db
def test_the_team_filter_offers_only_teams_in_scope(credit_viewer, credit, marketing):
    response = credit_viewer.get("/")
    choices = [value for value, _ in response.context["form"].fields["team"].choices]
    assert choices == ["", "credit"]


@pytest.mark.django_db
def test_the_inventory_query_count_does_not_grow_with_models(
    global_viewer, team, django_assert_max_num_queries, credit
):
    for n in range(25):
        model = RegisteredModelFactory(name=f"model-{n:02d}", owner_team=team)
        ModelVersionFactory(model=model, number=1)
        ModelVersionFactory(model=model, number=2, status="pending_verification")
    # session, user, role bindings, team choices, count, page, the page's models due for revalidation, and what is
    # approved where: the environments and the page's live releases (their approvals are read only when there are
    # some), and what runs where: the page's serving and active deployments
    with django_assert_max_num_queries(10):
        response = global_viewer.get("/?risk_tier=limited")
    assert len(response.context["page"]) == 25


# ---- model and version pages ------------------------------------------------------------


@pytest.mark.django_db
def test_the_model_page_shows_fields_and_versions(credit_viewer, credit):
    response = credit_viewer.get("/models/credit-scoring/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Rank consumer loan applications" in page
    assert 'href="/models/credit-scoring/versions/2/"' in page and 'href="/models/credit-scoring/versions/1/"' in page
    assert "badge-status-retired" in page
    assert "none: evidence is asked for by hand" in page
    # with default evidence, the page names the kinds asked for each new version
    credit.default_evidence = ["bias", "pii_scan"]
    credit.save(update_fields=["default_evidence"])
    page = credit_viewer.get("/models/credit-scoring/").content.decode()
    section = page[page.index('id="default-evidence"') :][:300]
    assert ">Bias report<" in section and ">PII scan<" in section
    assert "pii_scan" not in section


@pytest.mark.django_db
def test_the_version_page_shows_digest_lineage_metrics_and_card(credit_viewer, credit, django_assert_max_num_queries):
    # session, user, role bindings, version (with model, team, datasets), training datasets, evidence runs;
    # the release gate block: the version's releases and the environments (2), the policy input document,
    # read once for every environment (7), then the packs in force in each of the two environments (2 x 3)
    with django_assert_max_num_queries(6 + 2 + 7 + 2 * 3):
        response = credit_viewer.get("/models/credit-scoring/versions/2/")
    assert response.status_code == 200
    page = response.content.decode()
    assert SHA in page
    assert "6.0\xa0KB" in page and "6144 bytes" in page
    assert "4f2a9c1" in page and 'href="https://ci.example.test/runs/812"' in page
    assert "loans-2024-train" in page and "loans-2024-eval" in page
    assert "0.873123" in page
    assert "Ethical considerations" in page and "Age is excluded as a feature." in page


@pytest.mark.django_db
def test_a_version_shows_why_it_is_invalid(credit_viewer, credit):
    ModelVersionFactory(model=credit, number=3, status="invalid", status_reason="not a loadable ONNX graph")
    page = credit_viewer.get("/models/credit-scoring/versions/3/").content.decode()
    assert "This version is invalid." in page and "not a loadable ONNX graph" in page


@pytest.mark.django_db
def test_a_pending_version_shows_its_verification_job(credit_viewer, credit):
    from apps.jobs.models import Job

    job = Job.objects.create(kind="registry.verify_version", status="running", progress=40, message="hashing")
    ModelVersionFactory(model=credit, number=3, status="pending_verification", sha256="", verification_job=job)
    page = credit_viewer.get("/models/credit-scoring/versions/3/").content.decode()
    assert "Verification pending." in page
    assert 'value="40"' in page and "Running · 40% · hashing" in page


@pytest.mark.django_db
def test_lineage_links_only_to_web_addresses(credit_viewer, credit):
    ModelVersionFactory(model=credit, number=3, ci_run_url="javascript:alert(1)")
    page = credit_viewer.get("/models/credit-scoring/versions/3/").content.decode()
    assert 'href="javascript:' not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/models/campaign-uplift/", "/models/campaign-uplift/versions/1/", "/models/no-such-model/"]
)
def test_models_out_of_scope_or_missing_are_404(credit_viewer, credit, marketing, path):
    response = credit_viewer.get(path)
    assert response.status_code == 404
    assert b"Page not found" in response.content


@pytest.mark.django_db
def test_a_look_at_an_out_of_scope_model_is_audited_as_denied(credit_viewer, credit, marketing, audit_mark):
    mark = audit_mark()
    credit_viewer.get("/models/campaign-uplift/")
    (event,) = mark.new(outcome="denied")
    assert event.target_type == "model" and event.target_id == str(marketing.pk)
    assert event.source == "web"


@pytest.mark.django_db
def test_a_person_without_roles_sees_an_empty_inventory(client, make_user, credit):
    client.force_login(make_user())
    response = client.get("/")
    assert response.status_code == 200
    assert b"No models to show" in response.content
    assert client.get("/models/credit-scoring/").status_code == 404


# ---- datasets ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_dataset_list_shows_only_datasets_in_scope(credit_viewer, credit, marketing):
    response = credit_viewer.get("/datasets/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "loans-2024-train" in page and "loans-2024-eval" in page
    assert "campaign-clicks" not in page
    assert credit_viewer.get("/datasets/?q=eval").context["page"].object_list[0].name == "loans-2024-eval"


@pytest.mark.django_db
def test_the_dataset_page_shows_the_schema_with_roles(credit_viewer, credit):
    dataset = credit.versions.get(number=2).training_datasets.get()
    response = credit_viewer.get(f"/datasets/{dataset.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "income" in page and "badge-role-sensitive" in page and "Sensitive" in page and "Label" in page
    assert "a" * 64 in page
    assert f"<title>{dataset.name} · Assay</title>" in page
    # its evidence card, once, without request buttons for a viewer
    assert page.count('id="evidence"') == 1 and "Scan for PII" not in page


@pytest.mark.django_db
def test_a_dataset_out_of_scope_is_404(credit_viewer, credit, marketing):
    from apps.registry.models import Dataset

    hidden = Dataset.objects.get(name="campaign-clicks")
    assert credit_viewer.get(f"/datasets/{hidden.pk}/").status_code == 404
    assert credit_viewer.get("/datasets/999999/").status_code == 404


# ---- the shell ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_audit_link_shows_only_for_people_who_may_read_the_trail(client, make_user):
    client.force_login(make_user("viewer"))
    assert b'href="/audit/"' not in client.get("/").content
    client.force_login(make_user("auditor"))
    assert b'href="/audit/"' in client.get("/").content


@pytest.mark.django_db
def test_static_files_are_served_by_the_app(client):
    response = client.get("/static/assay/css/assay.css")
    assert response.status_code == 200
    assert b".badge-success" in b"".join(response.streaming_content)


@pytest.mark.django_db
def test_the_inventory_pages_through_long_lists_keeping_filters(global_viewer, team):
    for n in range(55):
        RegisteredModelFactory(name=f"model-{n:02d}", owner_team=team, risk_tier="high")
    first = global_viewer.get("/?risk_tier=high")
    assert len(first.context["page"]) == 50
    assert b'href="?risk_tier=high&amp;page=2"' in first.content
    second = global_viewer.get("/?risk_tier=high&page=2")
    assert [m.name for m in second.context["page"]] == [f"model-{n}" for n in range(50, 55)]


@pytest.mark.django_db
def test_a_denial_raised_in_a_dashboard_view_is_a_403_page_and_audited(rf, make_user, audit_mark):
    from apps.core.errors import Denied
    from apps.core.views import domain_error

    # given: a signed-in person whose request a view refuses
    request = rf.get("/somewhere/")
    request.user = make_user("viewer")
    mark = audit_mark()
    # when
    response = domain_error(request, Denied("Only compliance officers may do this.", audit_action="policy.updated"))
    # then
    assert response.status_code == 403
    assert b"Only compliance officers may do this." in response.content
    assert [(e.action, e.outcome) for e in mark.new()] == [("policy.updated", "denied")]
