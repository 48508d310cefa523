"""Dashboard pages for deployments: the targets (admins), the Deploy form of an approved release, the deployments
list and a deployment's page with its live step timeline and the Halt, Resume, Roll back and Undeploy forms.

Thin: reads go through the selectors (rbac in both: a deployment out of scope is a 404, the targets need
``deployments.manage_targets``), each form posts to one service, which decides again who may and when. The
deployment page follows its rollout by fetching its own live part (``?part=live``) every few seconds
(``static/assay/js/assay.js``); without the script a reload shows the same.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.principals import principal_for_user
from apps.core.errors import Conflict, ValidationFailed
from apps.core.totals import BoundedPaginator
from apps.rbac import services as rbac
from apps.releases import selectors as releases

from . import selectors, services
from .choices import ACTIVE, FINAL, DeploymentState, Phase, TargetKind
from .forms import DeployForm, TargetEditForm, TargetForm

PAGE_SIZE = 50
# How often (seconds) a deployment's page fetches its live part while the rollout is not final.
LIVE_EVERY = 3


# ---------------------------------------------------------------------------------------------
# Deploying a release


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def release_deploy(request, release_id):
    """The Deploy form of an approved release (``deployments.deploy``): a target of its environment, the strategy,
    optionally the steps; a start goes to the new deployment's page, a refusal comes back next to its field."""
    actor = principal_for_user(request.user)
    release = releases.release_get(actor=actor, release_id=release_id)  # out of scope: 404
    targets = selectors.deploy_targets(actor=actor, release=release)  # who may not deploy it: 403, audited
    form = DeployForm(request.POST or None, targets=targets)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                deployment = services.deployment_start(actor=actor, release_id=release.public_id, **form.cleaned_data)
            except ValidationFailed as exc:
                form.add_service_errors(exc)
            except Conflict as exc:  # a rollout already under way, the version already serving, governance
                form.add_error(None, exc.detail)
            else:
                messages.success(
                    request, f"Deploying {release.model.name} v{release.version.number} to {deployment.target.name}."
                )
                return redirect("deployments:deployment_detail", deployment_id=deployment.public_id)
        status = 400
    return render(
        request,
        "deployments/release_deploy.html",
        {"release": release, "version": release.version, "targets": targets, "form": form},
        status=status,
    )


# ---------------------------------------------------------------------------------------------
# Targets


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def target_list(request):
    """Every deployment target with its settings (never its credentials) and the reconciler's last look;
    the form that adds one (global admins: ``deployments.manage_targets``)."""
    actor = principal_for_user(request.user)
    targets = selectors.target_list(actor=actor)  # refuses (403, audited) anyone without the permission
    environments = list(releases.environment_list())
    form = TargetForm(request.POST or None, environments=environments)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            values = form.cleaned_data
            try:
                target = services.target_create(actor=actor, **values)
            except ValidationFailed as exc:
                form.add_service_errors(exc)
            except Conflict as exc:
                form.add_error("name", exc.detail)
            else:
                messages.success(request, f"Target {target.name} added.")
                return redirect("deployments:target_list")
        form.render_credentials_blank()
        status = 400
    rows = [(target, _settings_summary(target.settings)) for target in targets]
    return render(
        request,
        "deployments/target_list.html",
        {"rows": rows, "form": form, "kinds": TargetKind.choices},
        status=status,
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def target_edit(request, target_id):
    """One target's settings, environment, credentials (replaced or cleared, never shown), enabled flag and
    description, changed through ``target_update``; and its Delete button (``deployments.manage_targets``)."""
    actor = principal_for_user(request.user)
    target = selectors.target_get(actor=actor, target_id=target_id)  # refuses anyone without the permission
    initial = {
        "environment": target.environment.name,
        "settings": json.dumps(target.settings or {}, indent=2, sort_keys=True),
        "enabled": target.enabled,
        "description": target.description,
    }
    form = TargetEditForm(request.POST or None, initial=initial, environments=list(releases.environment_list()))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.target_update(actor=actor, target_id=target.public_id, **form.changes())
            except ValidationFailed as exc:
                form.add_service_errors(exc)
            except Conflict as exc:
                form.add_error("environment", exc.detail)
            else:
                messages.success(request, f"Target {target.name} saved.")
                return redirect("deployments:target_list")
        form.render_credentials_blank()
        status = 400
    return render(request, "deployments/target_edit.html", {"target": target, "form": form}, status=status)


@login_required
@require_POST
def target_delete(request, target_id):
    """Delete a target no deployment ever used (``target_delete`` says why not otherwise: disable it instead)."""
    actor = principal_for_user(request.user)
    try:
        services.target_delete(actor=actor, target_id=target_id)
    except Conflict as exc:
        messages.error(request, exc.detail)
        return redirect("deployments:target_edit", target_id=target_id)
    messages.success(request, "Target deleted.")
    return redirect("deployments:target_list")


def _settings_summary(settings: dict) -> list[tuple[str, str]]:
    """A target's settings as (key, short text): objects and lists are summarised, long text is cut."""
    summary = []
    for key, value in sorted((settings or {}).items()):
        if isinstance(value, dict):
            text = ", ".join(sorted(value)) or "{}"
        elif isinstance(value, list):
            text = f"{len(value)} item{'s' if len(value) != 1 else ''}"
        else:
            text = str(value)
        summary.append((key.replace("_", " "), text if len(text) <= 60 else text[:59] + "…"))
    return summary


# ---------------------------------------------------------------------------------------------
# Deployments


@login_required
@require_safe
def deployment_list(request):
    """Deployments the person may see, newest first, filtered by state, environment and target."""
    actor = principal_for_user(request.user)
    state = request.GET.get("state", "")
    state = state if state in DeploymentState.values else ""
    environment, target = request.GET.get("environment", ""), request.GET.get("target", "")
    deployments = selectors.deployment_page_list(
        actor=actor, state=state, environment=environment, target=target, model=request.GET.get("model", "")
    )
    page = BoundedPaginator(deployments, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "deployments/deployment_list.html",
        {
            "page": page,
            "deployments": page.object_list,
            "states": DeploymentState.choices,
            "environments": releases.environment_list(),
            "state": state,
            "environment": environment,
            "target": target,
        },
    )


@login_required
@require_safe
def deployment_detail(request, deployment_id):
    """A deployment: its rollout step by step with the health each step was judged on, the traffic split,
    what the reconciler found, and the forms the person may use. ``?part=live`` answers the live part alone."""
    actor = principal_for_user(request.user)
    deployment = selectors.deployment_page_get(actor=actor, deployment_id=deployment_id)
    context = _deployment_context(actor, deployment)
    if request.GET.get("part") == "live":
        return render(request, "deployments/_live.html", context)
    return render(request, "deployments/deployment_detail.html", context)


def _deployment_context(actor, deployment) -> dict:
    state = deployment.state
    may_deploy = rbac.allows(actor, "deployments.deploy", deployment)
    rollback_serving = (
        state == DeploymentState.SUCCEEDED
        and deployment.replaces is not None
        and deployment.replaces.state == DeploymentState.SUPERSEDED
    )
    steps = deployment.steps or []
    step_number = min(deployment.step_index + 1, len(steps)) if steps else 0
    return {
        "deployment": deployment,
        "version": deployment.version,
        "model": deployment.model,
        "steps_total": len(steps),
        "step_number": step_number,
        "plan": [
            {**step, "number": i + 1, "current": i == deployment.step_index and state in ACTIVE}
            for i, step in enumerate(steps)
        ],
        "timeline": [(step, _figures(step.figures)) for step in deployment.timeline.all()],
        "thresholds": _figures(deployment.thresholds),
        "members": _members(deployment),
        "drift": selectors.deployment_drift(deployment),
        "promoting": deployment.phase == Phase.PROMOTE and state in ACTIVE,
        "live": state not in FINAL or not deployment.converged,
        "live_every": LIVE_EVERY,
        "can_halt": state in (DeploymentState.PENDING, DeploymentState.PROGRESSING, DeploymentState.PAUSED)
        and rbac.allows(actor, "deployments.halt", deployment),
        "can_resume": state in (DeploymentState.PAUSED, DeploymentState.HALTED) and may_deploy,
        "can_rollback": may_deploy
        and ((state in ACTIVE and state != DeploymentState.ROLLING_BACK) or rollback_serving),
        "can_undeploy": state == DeploymentState.SUCCEEDED and may_deploy,
    }


_FIGURES = {
    "requests": ("Requests", "{:d}"),
    "errors": ("Errors", "{:d}"),
    "error_rate": ("Error rate", "{:.2%}"),
    "p99_ms": ("p99 latency", "{:.0f} ms"),
    "restarts": ("Restarts", "{:d}"),
    "max_error_rate": ("Error rate at most", "{:.2%}"),
    "max_p99_ms": ("p99 latency at most", "{:.0f} ms"),
    "max_restarts": ("Restarts at most", "{:d}"),
    "min_requests": ("Requests needed to judge", "{:d}"),
}


def _figures(figures: dict | None) -> list[tuple[str, str]]:
    """Health figures (or thresholds) as (label, text) a person reads: "Error rate", "1.25%"."""
    rows = []
    for key, value in (figures or {}).items():
        label, fmt = _FIGURES.get(key, (key.replace("_", " ").capitalize(), "{}"))
        if value is None:
            text = "not measured"
        else:
            try:
                text = fmt.format(int(value) if fmt == "{:d}" else value)
            except (TypeError, ValueError):
                text = str(value)
        rows.append((label, text))
    return rows


def _members(deployment) -> list[dict]:
    """The traffic split last applied, per member: the stable version and this deployment's version."""
    traffic = deployment.traffic or {}
    if not traffic:
        return []
    members = []
    if deployment.replaces is not None and traffic.get("stable") is not None:
        members.append(
            {"role": "stable", "version": deployment.replaces.version, "weight": traffic["stable"], "shadow": False}
        )
    shadow = bool(traffic.get("shadow"))
    members.append(
        {
            "role": "new",
            "version": deployment.version,
            "weight": 0 if shadow else traffic.get("new") or 0,
            "shadow": shadow,
        }
    )
    return members


_COMMANDS = {
    "halt": (services.deployment_halt, "Halted: live traffic goes back to the stable version within seconds."),
    "resume": (services.deployment_resume, "Resumed: the rollout goes on."),
    "rollback": (services.deployment_rollback, "Rolling back: all traffic to the stable version."),
    "undeploy": (services.deployment_undeploy, "Undeploying: the service is being removed from its target."),
}


@login_required
@require_POST
def deployment_command(request, deployment_id, action: str):
    """Halt, resume, roll back or undeploy from the deployment's page, with the reason typed there."""
    if action not in _COMMANDS:
        raise Http404("No such command.")
    service, done = _COMMANDS[action]
    try:
        service(
            actor=principal_for_user(request.user), deployment_id=deployment_id, reason=request.POST.get("reason", "")
        )
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, done)
    return redirect("deployments:deployment_detail", deployment_id=deployment_id)
