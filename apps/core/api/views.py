"""Public operational endpoints."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


def _check_database() -> dict:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True, "vendor": connection.vendor, "ms": round((time.perf_counter() - started) * 1000, 1)}
    except Exception as exc:  # report, don't raise: this is the health endpoint
        return {"ok": False, "vendor": connection.vendor, "error": exc.__class__.__name__}


def _check_broker() -> dict:
    from controlplane.celery import app

    url = settings.CELERY_BROKER_URL
    transport = url.split("://", 1)[0]
    started = time.perf_counter()
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": transport, "ms": round((time.perf_counter() - started) * 1000, 1)}
    except Exception as exc:
        return {"ok": False, "transport": transport, "error": exc.__class__.__name__}


class HealthView(APIView):
    """Is the control plane able to serve: database and broker reachable."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            200: inline_serializer(
                "Health",
                {"status": serializers.CharField(), "database": serializers.DictField(), "broker": serializers.DictField()},
            )
        },
        auth=[],
    )
    def get(self, request):
        database = _check_database()
        broker = _check_broker()
        ok = database["ok"] and broker["ok"]
        return Response(
            {"status": "ok" if ok else "unavailable", "database": database, "broker": broker},
            status=200 if ok else 503,
        )
