"""Dashboard pages for policies: the pack list, a pack's source, history and bindings, uploads, and dry-runs.

Thin: writes go through ``services`` (rbac, audit), reads through ``selectors``. A dry-run is a
GET (it writes nothing) and shows the decision rule by rule.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.models import Team
from apps.accounts.principals import principal_for_user
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.rbac import services as rbac
from apps.registry import selectors as registry
from apps.registry.models import RegisteredModel

from . import selectors, services
from .disclosure import decision_for_reader

RESULT_ORDER = {"fail": 0, "warning": 1, "pass": 2, "not_applicable": 3}


@login_required
@require_safe
def pack_list(request):
    """Every pack: shipped first, with its latest version."""
    actor = principal_for_user(request.user)
    packs = list(selectors.policy_pack_list(actor=actor))
    return render(
        request,
        "policies/pack_list.html",
        {"packs": packs, "can_manage": rbac.has_global(actor, "policies.manage")},
    )


@login_required
@require_http_methods(["GET", "POST"])
def pack_new(request):
    """Upload a custom pack (compliance officers and admins)."""
    actor = principal_for_user(request.user)
    form = {"name": "", "title": "", "source": "", "note": ""}
    error = None
    if request.method == "POST":
        form = {k: request.POST.get(k, "") for k in form}
        try:
            version = services.policy_pack_create(
                actor=actor, name=form["name"].strip(), source=form["source"], title=form["title"], note=form["note"]
            )
        except (ValidationFailed, Conflict) as exc:
            error = exc
        else:
            messages.success(request, f"Policy pack {version.pack.name} v1 uploaded.")
            return redirect("policies:pack_detail", name=version.pack.name)
    else:
        rbac.require(actor, "policies.manage", audit_action="policy_pack.created")
    return render(request, "policies/pack_new.html", {"form": form, "error": error, "line": _line(error)})


def _line(error) -> int | None:
    return error.extra.get("line") if error is not None else None


def _dry_run(request, actor, pack, version):
    """The decision asked for by the dry-run form's query, or None; errors become a message."""
    model_name, number = request.GET.get("model", ""), request.GET.get("version", "")
    if not model_name or not number:
        return None, None
    try:
        environment = selectors.environment_for(request.GET.get("environment", ""))
        decision = selectors.policy_decision_get(
            actor=actor, model_name=model_name, number=int(number), environment=environment, pin=version
        )
    except (ValueError, ValidationFailed, NotFound) as exc:
        return None, getattr(exc, "detail", "Choose a model, a version number and an environment.")
    shown = decision_for_reader(actor=actor, decision=decision.as_dict())
    rules = sorted(shown["rules"], key=lambda r: (r["pack"] != pack.name, RESULT_ORDER.get(r["result"], 9)))
    return {"decision": shown, "rules": rules}, None


@login_required
@require_safe
def pack_detail(request, name: str):
    """A pack's source (latest or ``?v=``), its version history, bindings, and a dry-run form."""
    actor = principal_for_user(request.user)
    pack = selectors.policy_pack_get(actor=actor, name=name)
    versions = list(selectors.policy_pack_versions(pack=pack))
    shown = versions[0] if versions else None
    if request.GET.get("v", "").isdigit():
        shown = next((v for v in versions if v.number == int(request.GET["v"])), None)
        if shown is None:
            raise NotFound(f"Policy pack {name!r} has no version {request.GET['v']}.")
    dry_run, dry_run_error = _dry_run(request, actor, pack, shown)
    can_manage = rbac.has_global(actor, "policies.manage")
    return render(
        request,
        "policies/pack_detail.html",
        {
            "pack": pack,
            "versions": versions,
            "shown": shown,
            "bindings": selectors.policy_binding_list(actor=actor, pack=pack),
            "can_manage": can_manage,
            "models": list(registry.model_list(actor=actor).order_by("name")[:500]),
            "teams": list(Team.objects.order_by("name")) if can_manage else [],
            "dry_run": dry_run,
            "dry_run_error": dry_run_error,
            "query": request.GET,
        },
    )


@login_required
@require_POST
def pack_version_new(request, name: str):
    """Upload a new version of a custom pack."""
    actor = principal_for_user(request.user)
    try:
        version = services.policy_pack_version_create(
            actor=actor, name=name, source=request.POST.get("source", ""), note=request.POST.get("note", "")
        )
    except (ValidationFailed, Conflict) as exc:
        line = _line(exc)
        messages.error(request, exc.detail + (f" (line {line})" if line and f"Line {line}" not in exc.detail else ""))
        return redirect("policies:pack_detail", name=name)
    messages.success(request, f"Version {version.number} of {name} uploaded.")
    return redirect("policies:pack_detail", name=name)


@login_required
@require_POST
def binding_new(request, name: str):
    """Bind the pack to every model, a team or a model, optionally in one environment."""
    actor = principal_for_user(request.user)
    scope = request.POST.get("scope", "")
    team = model = None
    if scope.startswith("team:"):
        team = Team.objects.filter(pk=scope[5:] or 0).first() if scope[5:].isdigit() else None
    elif scope.startswith("model:"):
        model = RegisteredModel.objects.filter(pk=scope[6:]).first() if scope[6:].isdigit() else None
    try:
        if scope not in ("all", "") and team is None and model is None:
            raise ValidationFailed("Choose every model, a team or a model.")
        services.policy_binding_create(
            actor=actor, pack_name=name, team=team, model=model, environment=request.POST.get("environment", "")
        )
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "Binding added.")
    return redirect("policies:pack_detail", name=name)


@login_required
@require_POST
def binding_delete(request, name: str, binding_id: int):
    """Remove a binding."""
    services.policy_binding_delete(actor=principal_for_user(request.user), binding_id=binding_id)
    messages.success(request, "Binding removed.")
    return redirect("policies:pack_detail", name=name)
