"""Webhook fixtures: a real HTTP receiver on 127.0.0.1 (allowed by an admin), a team's webhook, a job runner."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import worker.tasks  # noqa: F401 - registers every job handler
from apps.accounts.principals import principal_for_user
from apps.notifications import services
from apps.notifications.models import WebhookDelivery
from worker.runner import run_job


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next scripted (status, headers, body), then 200; keeps every request."""

    url: str = ""
    script: list = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def answer(self, *responses) -> None:
        self.script.extend(responses)


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(Received(self.path, dict(self.headers.items()), body))
            status, headers, text = state.script.pop(0) if state.script else (200, {}, "ok")
            payload = text.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/assay"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _predictable_backoff(settings):
    """No jitter, so each delay is exactly BASE * 2**(n-1)."""
    settings.ASSAY_WEBHOOK_RETRY_JITTER = 0.0
    settings.ASSAY_WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.ASSAY_WEBHOOK_RETRY_MAX_DELAY_SECONDS = 3600
    settings.ASSAY_WEBHOOK_MAX_ATTEMPTS = 5


@pytest.fixture
def admin(make_user):
    return make_user("admin", username="ada")


@pytest.fixture
def admin_principal(admin):
    return principal_for_user(admin)


@pytest.fixture
def officer(make_user, team):
    """A compliance officer of the 'credit' team: manages its webhooks."""
    return make_user("compliance_officer", username="olga", team=team)


@pytest.fixture
def officer_principal(officer):
    return principal_for_user(officer)


@pytest.fixture
def local_allowed(admin_principal):
    """The admin allows 127.0.0.1 (plain http too): the test receiver lives there."""
    return services.allowed_host_create(actor=admin_principal, host="127.0.0.1", allow_http=True, note="tests")


@pytest.fixture
def hook(officer_principal, team, receiver, local_allowed):
    """(webhook, secret) of the credit team, subscribed to every event, pointing at the receiver."""
    return services.webhook_create(
        actor=officer_principal,
        team=team,
        url=receiver.url,
        events=["release.approved", "evidence.completed", "evidence.failed"],
    )


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """run(job_id) -> runs a job as a worker would, after-commit work included."""

    def go(job_id: int) -> str:
        with django_capture_on_commit_callbacks(execute=True):
            return run_job(job_id)

    return go


@pytest.fixture
def deliver(run):
    """deliver(delivery) -> runs the delivery's current job; returns the delivery as it is then."""

    def go(delivery: WebhookDelivery) -> WebhookDelivery:
        delivery.refresh_from_db()
        assert run(delivery.job_id) == "succeeded"
        delivery.refresh_from_db()
        return delivery

    return go
