"""Dashboard pages for the registry: inventory, model, version, datasets; retrying a failed verification.

Thin: every read goes through ``apps.registry.selectors``, which apply rbac, so
a list shows only what the person may see and anything else is a 404. The
writes (asking for a verification again; approving, rejecting or cancelling a
pending facts change) go through the registry's services.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.accounts.principals import principal_for_user
from apps.core.errors import Conflict, InvalidTransition, ValidationFailed
from apps.core.totals import BoundedPaginator
from apps.deployments import selectors as deployments
from apps.evidence import selectors as evidence_selectors
from apps.rbac import services as rbac
from apps.releases import selectors as releases

from . import downloads, selectors, services
from .choices import ArtifactFormat, ColumnRole, DataCategory, DatasetStatus, VersionStatus
from .forms import DatasetFilterForm, ModelFilterForm
from .services.retry import verification_stuck

PAGE_SIZE = 50


def _label(choices, value: str) -> str:
    return choices(value).label if value in choices.values else value


def _category_labels(values) -> list[str]:
    return [_label(DataCategory, v) for v in values or []]


def _display(value: Any) -> str:
    """A JSON value as text a person reads: numbers kept short, lists joined, objects as JSON."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, sort_keys=True)
    return str(value)


def _rows(data: dict | None) -> list[tuple[str, str, str]]:
    """(key, readable label, display value) for a JSON object such as metrics or a model card."""
    if not isinstance(data, dict):
        return []
    return [(str(k), str(k).replace("_", " ").capitalize(), _display(v)) for k, v in data.items()]


@login_required
@require_safe
def model_list(request):
    """The model inventory, filtered by search, team, risk tier and data category."""
    actor = principal_for_user(request.user)
    form = ModelFilterForm(request.GET or None, teams=selectors.model_team_names(actor=actor))
    page = BoundedPaginator(selectors.model_inventory(actor=actor, **form.filters()), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    model_ids = [m.pk for m in page]
    due = releases.models_revalidation_due(model_ids=model_ids)
    overview = releases.model_release_overview(actor=actor, model_ids=model_ids)
    running = deployments.running_where(actor=actor, model_ids=model_ids)
    for model in page:
        model.revalidation_due = model.pk in due
        model.environments = overview.get(model.pk, [])
        model.running = running.get(model.pk, [])
        model.category_labels = _category_labels(model.data_categories)
        model.latest_status_label = (
            _label(VersionStatus, model.latest_version_status) if model.latest_version_status else ""
        )
    return render(request, "registry/model_list.html", {"form": form, "page": page})


@login_required
@require_safe
def model_detail(request, name: str):
    """One model: its governance fields and its versions."""
    actor = principal_for_user(request.user)
    model = selectors.model_get(actor=actor, name=name)
    versions = list(selectors.version_list(actor=actor, model=model))
    return render(
        request,
        "registry/model_detail.html",
        {
            "model": model,
            "versions": versions,
            "category_labels": _category_labels(model.data_categories),
            "environments": releases.model_release_overview(actor=actor, model_ids=[model.pk]).get(model.pk, []),
            "running": deployments.running_where(actor=actor, model_ids=[model.pk]).get(model.pk, []),
            "can_report": rbac.allows(actor, "reports.generate", model),
            **_facts_change_context(actor, model),
        },
    )


def _facts_change_context(actor, model) -> dict:
    """The model's pending facts change, as rows of (field, before, after), and who may decide or cancel it."""
    change = selectors.facts_change_pending(actor=actor, model=model)
    if change is None:
        return {"facts_change": None}
    rows = [
        (field.replace("_", " ").capitalize(), _display(diff["before"]), _display(diff["after"]))
        for field, diff in change.changes.items()
    ]
    return {
        "facts_change": change,
        "facts_change_rows": rows,
        "can_decide_facts": selectors.facts_change_can_decide(actor=actor, change=change),
        "can_cancel_facts": rbac.allows(actor, "registry.model_edit", model),
    }


_FACTS_COMMANDS = {
    "approve": (services.facts_change_approve, "The change is approved and applied."),
    "reject": (services.facts_change_reject, "The change is rejected; the model keeps its facts."),
    "cancel": (services.facts_change_cancel, "The change is cancelled."),
}


@login_required
@require_POST
def facts_change_decide(request, name: str, change_id, command: str):
    """Approve, reject or cancel (with a reason) a pending facts change from the model's page."""
    if command not in _FACTS_COMMANDS:
        raise Http404("No such command.")
    service, done = _FACTS_COMMANDS[command]
    try:
        service(actor=principal_for_user(request.user), change_id=change_id, reason=request.POST.get("reason", ""))
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, done)
    return redirect("registry:model_detail", name=name)


@login_required
@require_safe
def version_detail(request, name: str, number: int):
    """One version: artifact and digest, status, lineage, metrics and model card."""
    actor = principal_for_user(request.user)
    version = selectors.version_get(actor=actor, model_name=name, number=number)
    stuck = verification_stuck(version, version.verification_job)
    runs = evidence_selectors.with_dataset_visibility(
        actor, list(evidence_selectors.evidence_run_list(actor=actor, version=version)[:10])
    )
    return render(
        request,
        "registry/version_detail.html",
        {
            "version": version,
            "model": version.model,
            "training_datasets": _marked(actor, version.training_datasets.all()),
            "evaluation_hidden": version.evaluation_dataset_id is not None
            and not rbac.allows(actor, "registry.view", version.evaluation_dataset),
            "metrics": _rows(version.metrics),
            "model_card": _rows(version.model_card),
            "category_labels": _category_labels(version.model.data_categories),
            "verification_stuck": stuck,
            "can_retry": stuck and rbac.allows(actor, "registry.version_create", version),
            "evidence_runs": runs,
            "accuracy_check": evidence_selectors.version_accuracy_check(
                actor=actor, version=version, recent=runs, recent_limit=10
            ),
            "can_request_evidence": version.status == VersionStatus.READY
            and bool(version.evaluation_dataset_id)
            and rbac.allows(actor, "evidence.request", version),
            "can_explain": version.format != ArtifactFormat.PREDICTIONS_ONLY,
            "can_download": _can_download(actor, version),
            "can_report": rbac.allows(actor, "audit.export"),
            "running": _running(actor, version),
            **_release_context(actor, version),
        },
    )


def _running(actor, version) -> list:
    """Where this version runs (the deployments app decides what the actor may see of it)."""
    rows = deployments.running_where(actor=actor, model_ids=[version.model_id]).get(version.model_id, [])
    return [row for row in rows if row.version.pk == version.pk]


def _marked(actor, datasets) -> list:
    """Datasets in a version's lineage, each with ``hidden`` set when it is outside the actor's scope
    (another team's data): the page then shows "a dataset you cannot see", not its name or digest."""
    shown = list(datasets)
    for dataset in shown:
        dataset.hidden = not rbac.allows(actor, "registry.view", dataset)
    return shown


def _release_context(actor, version) -> dict:
    """The version's gate per environment and the "Request release" form (the releases app decides both)."""
    if version.status != VersionStatus.READY:
        return {"release_gates": [], "can_request_release": False}
    return {
        "release_gates": releases.version_gates(actor=actor, version=version),
        "can_request_release": rbac.has_anywhere(actor, "releases.request")
        or rbac.has_anywhere(actor, "releases.emergency"),
        "can_break_glass": rbac.has_anywhere(actor, "releases.emergency"),
    }


@login_required
@require_POST
def version_verify(request, name: str, number: int):
    """Ask for a version's verification again after its job failed; back to the version's page with the outcome."""
    try:
        services.version_reverify(actor=principal_for_user(request.user), model_name=name, number=number)
    except InvalidTransition as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Verification of {name} v{number} requested again; a worker will pick it up.")
    return redirect("registry:version_detail", name=name, number=number)


@login_required
@require_safe
def dataset_list(request):
    """Datasets the person may see, newest first."""
    actor = principal_for_user(request.user)
    form = DatasetFilterForm(request.GET or None)
    page = BoundedPaginator(selectors.dataset_list(actor=actor, **form.filters()), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "registry/dataset_list.html", {"form": form, "page": page})


@login_required
@require_safe
def dataset_detail(request, dataset_id: int):
    """One dataset: location, digest, row count and its schema with a role per column."""
    actor = principal_for_user(request.user)
    dataset = selectors.dataset_get(actor=actor, dataset_id=dataset_id)
    columns = [
        {
            "name": column.get("name", ""),
            "type": column.get("type", ""),
            "role": column.get("role", ""),
            "role_label": _label(ColumnRole, column.get("role", "")),
        }
        for column in (dataset.schema or [])
        if isinstance(column, dict)
    ]
    stuck = verification_stuck(dataset, dataset.verification_job)
    derived = list(selectors.dataset_list(actor=actor).filter(source=dataset)[:10])
    runs = evidence_selectors.with_dataset_visibility(
        actor, list(evidence_selectors.evidence_run_list(actor=actor, dataset=dataset)[:10])
    )
    context = {
        "dataset": dataset,
        "columns": columns,
        "verification_stuck": stuck,
        "can_retry": stuck and rbac.allows(actor, "registry.dataset_create", dataset),
        "evidence_runs": runs,
        "pii": evidence_selectors.dataset_pii_status(actor=actor, dataset=dataset, recent=runs, recent_limit=10),
        "can_download": _can_download(actor, dataset),
        "can_request_evidence": dataset.status == DatasetStatus.READY
        and rbac.allows(actor, "evidence.request", dataset),
        "derived": derived,
        "derived_hidden": selectors.dataset_derived_hidden_count(actor=actor, dataset=dataset),
        "source_hidden": dataset.source_id is not None and not rbac.allows(actor, "registry.view", dataset.source),
    }
    return render(request, "registry/dataset_detail.html", context)


@login_required
@require_POST
def dataset_verify(request, dataset_id: int):
    """Ask for a dataset's verification again after its job failed; back to the dataset's page with the outcome."""
    try:
        dataset = services.dataset_reverify(actor=principal_for_user(request.user), dataset_id=dataset_id)
    except InvalidTransition as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Verification of “{dataset.name}” requested again; a worker will pick it up.")
    return redirect("registry:dataset_detail", dataset_id=dataset_id)


def _can_download(actor, obj) -> bool:
    """Show the Download button: the person may download, and the object has verified bytes to give."""
    if not rbac.allows(actor, downloads.PERMISSION, obj):
        return False
    try:
        downloads.check_downloadable(obj)
    except downloads.NotDownloadable:
        return False
    return True


def _see_other(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response.status_code = 303  # See Other: the browser follows with a GET and saves the file
    return response


@login_required
@require_POST
def version_download(request, name: str, number: int):
    """Download a version's artifact from its page: audited, then on to the signed link (the file).
    A version without verified bytes goes back to its page with the reason."""
    try:
        link = services.version_artifact_download(
            actor=principal_for_user(request.user), model_name=name, number=number
        )
    except downloads.NotDownloadable as exc:
        messages.error(request, exc.detail)
        return redirect("registry:version_detail", name=name, number=number)
    return _see_other(link.url)


@login_required
@require_POST
def dataset_download(request, dataset_id: int):
    """Download a dataset from its page: audited, then on to the signed link (the file)."""
    try:
        link = services.dataset_download(actor=principal_for_user(request.user), dataset_id=dataset_id)
    except downloads.NotDownloadable as exc:
        messages.error(request, exc.detail)
        return redirect("registry:dataset_detail", dataset_id=dataset_id)
    return _see_other(link.url)
