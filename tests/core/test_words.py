"""The dashboard's one vocabulary (``{% load words %}``): times, people, environments and labels, as a
template renders them."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from django.template import Context, Template

from apps.releases.models import Environment
from tests.factories.accounts import ServiceAccountFactory, UserFactory


def render(source: str, **context) -> str:
    return Template("{% load words %}" + source).render(Context(context))


def test_a_time_has_one_format_and_carries_its_instant():
    moment = datetime(2026, 12, 7, 10, 41, 7, tzinfo=timezone(timedelta(hours=1)))
    assert render("{{ t|when }}", t=moment) == (
        '<time datetime="2026-12-07T09:41:07+00:00">2026-12-07 09:41 UTC</time>'
    )
    # an ISO string (a decision's stamp), a date and nothing
    assert render("{{ t|when_text }}", t="2026-12-07T09:41:59Z") == "2026-12-07 09:41 UTC"
    assert render("{{ t|when_text }}", t=date(2027, 3, 1)) == "2027-03-01 00:00 UTC"
    assert render('{{ t|when|default:"—" }}', t=None) == "—"


@pytest.mark.django_db
def test_a_person_is_named_with_their_username():
    dana = UserFactory(username="dana", first_name="Dana", last_name="Reyes")
    bare = UserFactory(username="ops")
    account = ServiceAccountFactory(name="ci-credit", owner=dana)
    assert render("{{ u|person }}", u=dana) == "Dana Reyes (dana)"
    assert render("{{ u|person }}", u=bare) == "ops"
    assert render("{{ u|person }}", u=account) == "service account ci-credit of Dana Reyes (dana)"
    assert render('{{ u|person|default:"—" }}', u=None) == "—"


def test_values_read_as_labels_never_as_slugs():
    assert render('{{ v|label:"role" }}', v="compliance_officer") == "Compliance officer"
    assert render('{{ v|label:"gate_status" }}', v="release_required") == "No release requested"
    assert render('{{ v|label:"gate_status" }}', v="pending_approval") == "Pending approval"
    assert render('{{ v|label:"rule_result" }}', v="not_applicable") == "Not applicable"
    assert render('{{ v|label:"evidence_kind" }}', v="pii_scan") == "PII scan"
    assert render('{{ v|label:"approval_decision" }}', v="approve") == "Approved"
    assert render('{{ v|label:"scope" }}', v="audit:read") == "Read and export the audit trail"
    # a value no vocabulary knows yet still reads as words
    assert render('{{ v|label:"gate_status" }}', v="deploying_now") == "Deploying now"
    assert render("{{ a|action_label }}", a="release.approval_recorded") == "Release: approval recorded"


def test_an_environment_reads_as_a_label_and_says_production_once():
    assert render("{{ e|environment }}", e=Environment(name="production", production=True)) == "Production"
    assert render("{{ e|environment }}", e=Environment(name="staging")) == "Staging"
    assert render("{{ e|environment }}", e=Environment(name="eu-west", production=True)) == "Eu west (production)"


def test_no_template_formats_a_time_its_own_way():
    """Every page shows times in the one format (``|when``): a template with ``|date``, ``|time``,
    ``|timesince`` or ``|naturaltime`` would bring back a second one."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    own_way = re.compile(r"\|\s*(date|time|timesince|timeuntil|naturaltime|naturalday)\b")
    found = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.rglob("*.html"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if own_way.search(line)
    ]
    assert found == []
