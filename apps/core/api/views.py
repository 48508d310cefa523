"""Public operational endpoints, and the API's answer for paths that do not exist."""

from __future__ import annotations

import logging
import os
import time

from django.conf import settings
from django.db import connection
from django.urls import Resolver404, resolve
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from kombu import Connection
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import health
from apps.core.api.params import query_choice
from apps.core.errors import NotFound, problem

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 3


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def check_database() -> dict:
    """Run ``SELECT 1`` on the default database."""
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # report, don't raise: this is the health endpoint
        logger.warning("health: database unreachable: %r", exc)
        return {"ok": False, "vendor": connection.vendor, "error": exc.__class__.__name__}
    return {"ok": True, "vendor": connection.vendor, "ms": _elapsed_ms(started)}


def check_broker() -> dict:
    """Connect to the Celery broker named by the settings *now* (not the URL the app saw at start).

    For ``filesystem://`` the broker is a folder: it must exist (it is created if missing) and be writable.
    ``database://`` has no broker: the workers poll the job table, and are woken by touching a file whose
    folder must be writable.
    """
    url = settings.CELERY_BROKER_URL
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS or {})
    transport = url.split("://", 1)[0]
    started = time.perf_counter()
    try:
        if transport == "database":
            folder = os.path.dirname(settings.ASSAY_WORKER_WAKE_FILE)
            if not os.access(folder, os.W_OK):
                raise PermissionError(f"wake-up folder {folder} is not writable")
        elif transport == "filesystem":
            folder = options["data_folder_in"]
            os.makedirs(folder, exist_ok=True)
            if not os.access(folder, os.W_OK):
                raise PermissionError(f"broker folder {folder} is not writable")
        else:
            with Connection(url, transport_options=options, connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:
        logger.warning("health: broker unreachable: %r", exc)
        return {"ok": False, "transport": transport, "error": exc.__class__.__name__}
    return {"ok": True, "transport": transport, "ms": _elapsed_ms(started)}


class HealthView(APIView):
    """Can the control plane serve, and is its background work being done. Public, for load balancers.

    200 ``{"status": "ok", "database": {...}, "broker": {...}, "workers": {...}}``. When the web
    process can serve but the background work is not being done (no worker seen for
    ``ASSAY_WORKER_STALE_SECONDS``, or a job queued longer than ``ASSAY_HEALTH_MAX_QUEUE_AGE_SECONDS``)
    it is still 200, with ``"status": "degraded"`` and the ``reasons``: taking the web process out
    of a load balancer would not bring a worker back. ``?strict=true`` answers 503 when degraded too,
    for monitors that read only the status code. 503 as ``application/problem+json`` when the
    database or the broker is unreachable. Reads only.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        summary="Health: database and broker reachable, workers alive",
        parameters=[
            OpenApiParameter("strict", bool, description="Answer 503 (not 200) when the status is degraded."),
        ],
        responses={
            200: inline_serializer(
                "Health",
                {
                    "status": serializers.CharField(),
                    "database": serializers.DictField(),
                    "broker": serializers.DictField(),
                    "workers": serializers.DictField(),
                    "reasons": serializers.ListField(child=serializers.CharField(), required=False),
                },
            ),
            503: inline_serializer(
                "HealthProblem",
                {
                    "type": serializers.CharField(),
                    "title": serializers.CharField(),
                    "status": serializers.IntegerField(),
                    "detail": serializers.CharField(),
                    "database": serializers.DictField(),
                    "broker": serializers.DictField(),
                },
            ),
        },
        auth=[],
    )
    def get(self, request):
        strict = query_choice(request, "strict", ("true", "false")) == "true"  # anything else is a 400
        checks = {"database": check_database(), "broker": check_broker()}
        down = [name for name, check in checks.items() if not check["ok"]]
        if not down:
            more, reasons = health.run_checks()
            if not reasons:
                return Response({"status": "ok", **checks, **more})
            body = {"status": "degraded", "reasons": reasons, **checks, **more}
            if strict:
                return problem(
                    503,
                    "Service degraded",
                    " ".join(f"{reason[0].upper()}{reason[1:]}." for reason in reasons),
                    code="degraded",
                    request=request,
                    **{k: v for k, v in body.items() if k != "status"},
                )
            return Response(body)
        return problem(
            503,
            "Service unavailable",
            f"Unreachable: {', '.join(down)}.",
            code="unavailable",
            request=request,
            **checks,
        )


def _slash_hint(path: str) -> str:
    """The same path with a trailing slash, when that is a real endpoint; else ""."""
    if path.endswith("/"):
        return ""
    try:
        match = resolve(path + "/")
    except Resolver404:
        return ""
    return path + "/" if getattr(match.func, "view_class", None) is not ApiNotFoundView else ""


class _AuthenticatedOrSlashHint(IsAuthenticated):
    # The endpoints are listed in the public schema anyway: pointing at the slash reveals nothing.
    def has_permission(self, request, view) -> bool:
        return bool(_slash_hint(request.path)) or super().has_permission(request, view)


class ApiNotFoundView(APIView):
    """Any path under /api/v1/ that matches no endpoint: 401 without credentials, else a problem+json 404.

    Anonymous callers learn nothing about which paths exist. A known path that
    only lacks its trailing slash gets a 404 naming the right path, to anyone,
    instead of a redirect (a redirected POST would lose its body).
    """

    schema = None
    permission_classes = [_AuthenticatedOrSlashHint]

    def _not_found(self, request, *args, **kwargs):
        hint = _slash_hint(request.path)
        if hint:
            raise NotFound(f"No API endpoint at {request.path}. API paths end with a slash: {hint}", public=True)
        raise NotFound(f"No API endpoint at {request.path}.", public=True)

    get = post = put = patch = delete = head = options = _not_found
