"""Downloads of a version's artifact and of a dataset.

A download starts with an audited POST that answers 303 See Other to a short-lived link signed for
the caller; following the link checks it again (permission now, expiry, signature, owner), writes
nothing and streams the bytes from storage (the local folder and a real S3 server) with their length,
type, name and recorded SHA-256, never holding the whole object in memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import tracemalloc

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.core.storage import CHUNK, get_storage, new_key
from apps.rbac import services as rbac
from apps.rbac.models import RoleBinding
from apps.registry import downloads
from tests.factories.registry import DatasetFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db

ARTIFACT = b"\x08\x07\x12\x04onnx" + bytes(range(256)) * 40
CSV = b"income,age,label\n" + b"52000.5,41,1\n" * 500
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def stored(data: bytes, kind: str) -> tuple[str, str, int]:
    saved = get_storage().save(io.BytesIO(data), kind=kind)
    return saved.key, saved.sha256, saved.size


@pytest.fixture
def version(model):
    key, sha, size = stored(ARTIFACT, "artifacts")
    return ModelVersionFactory(model=model, number=4, status="ready", artifact_uri=key, sha256=sha, size=size)


@pytest.fixture
def dataset(team):
    key, sha, size = stored(CSV, "datasets")
    return DatasetFactory(name="loans 2024/eval", owner_team=team, status="ready", uri=key, sha256=sha, size=size)


@pytest.fixture
def client_as(api_client_for, make_user, team):
    """client_as("contributor") -> an API client of a new person holding that role on the team
    (``"auditor@global"``: globally); ``scopes`` narrows its token."""

    def make(role: str, scopes=None):
        name, _, where = role.partition("@")
        user = make_user(name, team=None if where else team)
        client = api_client_for(user, scopes=scopes)
        client.user = user
        return client

    return make


def version_url(version) -> str:
    return f"/api/v1/models/{version.model.name}/versions/{version.number}/artifact/download/"


def dataset_url(dataset) -> str:
    return f"/api/v1/datasets/{dataset.pk}/download/"


def body_of(response) -> bytes:
    assert isinstance(response, StreamingHttpResponse), type(response)
    return b"".join(response.streaming_content)


def downloads_on_trail() -> list[AuditEvent]:
    """The downloads on the trail (refusals, recorded under the same actions, are not downloads)."""
    return list(
        AuditEvent.objects.filter(
            action__in=["model_version.artifact_downloaded", "dataset.downloaded"], outcome="success"
        )
    )


class NothingWritten:
    """Fails when the block sends an INSERT, UPDATE or DELETE (the block must consume any stream itself)."""

    def __enter__(self):
        self.events = AuditEvent.objects.count()
        self.captured = CaptureQueriesContext(connection).__enter__()
        return self

    def __exit__(self, *exc):
        self.captured.__exit__(*exc)
        if exc[0] is None:
            written = [q["sql"] for q in self.captured.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]
            assert written == [], written
            assert AuditEvent.objects.count() == self.events


# --- the POST: permission, audit, link ---------------------------------------------------------


def test_a_contributor_downloads_a_versions_artifact_and_the_trail_has_it_once(client_as, version):
    # given a contributor of the owning team
    client = client_as("contributor")
    # when they ask for the artifact
    asked = client.post(version_url(version))
    # then a 303 sends them to a link for them alone, which the body repeats with its expiry
    assert asked.status_code == 303, asked.content
    body = asked.json()
    assert asked["Location"] == body["url"] and body["url"].startswith("http://testserver/api/v1/downloads/")
    assert body["sha256"] == hashlib.sha256(ARTIFACT).hexdigest() and body["size"] == len(ARTIFACT)
    assert body["filename"] == "churn-v4.onnx" and body["expires_at"]
    # and the trail holds one event naming who, what, the digest and the size, never the link
    (event,) = downloads_on_trail()
    assert event.action == "model_version.artifact_downloaded" and event.outcome == "success"
    assert (event.actor_id, event.target_type, event.target_id) == (
        str(client.user.pk),
        "model_version",
        str(version.pk),
    )
    assert event.artifact_sha256 == body["sha256"] and event.after["size"] == len(ARTIFACT)
    token = body["url"].rstrip("/").rsplit("/", 1)[1]
    assert token not in json.dumps([event.after, event.before, event.reason])

    # when they follow the link with the same credentials
    with NothingWritten():
        got = client.get(asked["Location"])
        data = body_of(got)
    # then the bytes come as a named attachment with their length and recorded digest, and nothing is written
    assert got.status_code == 200 and data == ARTIFACT
    assert got["Content-Length"] == str(len(ARTIFACT))
    assert got["Content-Type"] == "application/octet-stream"
    assert got["Content-Disposition"] == 'attachment; filename="churn-v4.onnx"'
    assert got["X-Checksum-SHA256"] == body["sha256"]
    assert got["Digest"].startswith("sha-256=")
    assert len(downloads_on_trail()) == 1


@pytest.mark.parametrize("role", ["compliance_officer@global", "auditor@global", "reviewer"])
def test_compliance_officers_auditors_and_reviewers_download_a_dataset(client_as, dataset, role):
    client = client_as(role)
    asked = client.post(dataset_url(dataset))
    assert asked.status_code == 303, asked.content
    got = client.get(asked["Location"])
    assert body_of(got) == CSV
    assert got["Content-Type"] == "text/csv"
    assert got["Content-Disposition"] == 'attachment; filename="loans_2024_eval.csv"'
    assert [e.action for e in downloads_on_trail()] == ["dataset.downloaded"]


@pytest.mark.parametrize("role", ["viewer", "release_manager"])
def test_a_role_without_download_is_refused_and_the_refusal_is_on_the_trail(client_as, version, dataset, role):
    client = client_as(role)
    for url in (version_url(version), dataset_url(dataset)):
        refused = client.post(url)
        assert refused.status_code == 403, refused.content
        assert refused["Content-Type"].startswith("application/problem+json")
        assert "registry.download" in refused.json()["detail"]
    assert downloads_on_trail() == []
    denied = AuditEvent.objects.filter(outcome="denied").values_list("action", flat=True)
    assert sorted(denied) == ["dataset.downloaded", "model_version.artifact_downloaded"]


def test_a_token_without_the_read_scope_cannot_download(client_as, version):
    # given a contributor's token that may register but not read (such a token cannot see the version either)
    client = client_as("contributor", scopes=["registry:write"])
    # when / then
    assert client.post(version_url(version)).status_code == 404
    assert downloads_on_trail() == []


def test_another_teams_object_is_not_found(client_as, version, other_team):
    outsider = client_as("contributor")
    RoleBinding.objects.filter(user=outsider.user).update(scope_team=other_team)
    assert outsider.post(version_url(version)).status_code == 404


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ({"status": "pending_verification"}, "not verified yet"),
        ({"status": "invalid", "status_reason": "not an ONNX model"}, "invalid (not an ONNX model)"),
        ({"status": "retired"}, "retired"),
        ({"format": "predictions_only", "artifact_uri": ""}, "predictions only"),
    ],
)
def test_a_version_without_verified_bytes_is_a_409_saying_why(client_as, version, state, says):
    type(version).objects.filter(pk=version.pk).update(**state)
    refused = client_as("contributor").post(version_url(version))
    assert refused.status_code == 409 and refused.json()["code"] == "not_downloadable"
    assert says in refused.json()["detail"]
    assert downloads_on_trail() == []


def test_a_reference_whose_bytes_were_never_fetched_is_a_409(client_as, model):
    version = ModelVersionFactory(
        model=model,
        status="pending_verification",
        artifact_uri="s3://ml-exports/churn/model.onnx",
        artifact_is_reference=True,
        sha256="",
        size=None,
    )
    refused = client_as("contributor").post(version_url(version))
    assert refused.status_code == 409
    assert "referenced, not uploaded, and have not been fetched yet" in refused.json()["detail"]


# --- the GET: checked again, writes nothing ------------------------------------------------------


def test_a_role_revoked_between_the_post_and_the_get_stops_the_download(client_as, version, system):
    # given a link issued to a contributor
    client = client_as("contributor")
    url = client.post(version_url(version))["Location"]
    # when their role is revoked before they follow it
    binding = RoleBinding.objects.get(user=client.user)
    rbac.role_revoke(actor=system, binding_id=binding.pk)
    refused = client.get(url)
    # then the link no longer works: a 403, recorded as a denial, and no bytes
    assert refused.status_code in (403, 404)
    assert not isinstance(refused, StreamingHttpResponse)
    assert AuditEvent.objects.filter(action="model_version.download_denied", outcome="denied").count() == 1
    assert len(downloads_on_trail()) == 1  # the POST's, nothing more


def test_a_role_revoked_but_still_able_to_see_gets_403(client_as, version, make_user, team, system):
    client = client_as("contributor")
    rbac.role_grant(actor=system, subject=client.user, role="viewer", team=team)
    url = client.post(version_url(version))["Location"]
    rbac.role_revoke(actor=system, binding_id=RoleBinding.objects.get(user=client.user, role="contributor").pk)
    refused = client.get(url)
    assert refused.status_code == 403
    assert "registry.download" in refused.json()["detail"]


def test_an_expired_link_is_gone_and_nothing_is_written(client_as, version, settings):
    settings.ASSAY_DOWNLOAD_LINK_SECONDS = -1
    client = client_as("contributor")
    url = client.post(version_url(version))["Location"]
    with NothingWritten():
        refused = client.get(url)
    assert refused.status_code == 410
    assert refused.json()["code"] == "download_link_expired" and "Ask for a new one" in refused.json()["detail"]


def test_a_tampered_link_is_refused_and_nothing_is_written(client_as, version, dataset):
    client = client_as("contributor")
    url = client.post(version_url(version))["Location"]
    other = client.post(dataset_url(dataset))["Location"]
    token = url.rstrip("/").rsplit("/", 1)[1]
    payload, _, signature = token.rpartition(":")
    forged = [
        url.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")),  # signature altered
        url.replace(token, payload.replace(payload[1], "x" if payload[1] != "x" else "y", 1) + ":" + signature),
        url.replace(token, other.rstrip("/").rsplit("/", 1)[1].rpartition(":")[0] + ":" + signature),  # swapped
        url.replace(token, "not-a-link"),
    ]
    for bad in forged:
        with NothingWritten():
            refused = client.get(bad)
        assert refused.status_code == 403, bad
        assert refused.json()["code"] == "download_link_invalid"


def test_another_persons_link_does_not_work_for_me(client_as, version):
    # given two contributors of the team, and a link issued to the first
    first, second = client_as("contributor"), client_as("contributor")
    url = first.post(version_url(version))["Location"]
    # when the second follows it
    refused = second.get(url)
    # then it is refused (and recorded), and nothing is streamed
    assert refused.status_code == 403
    assert "issued to another account" in refused.json()["detail"]
    assert AuditEvent.objects.filter(outcome="denied", actor_id=str(second.user.pk)).count() == 1
    # and anonymous callers are asked to sign in
    assert Client().get(url).status_code == 401


def test_a_link_is_no_bearer_credential_across_a_session_and_a_token_of_different_people(client_as, version):
    client = client_as("contributor")
    url = client.post(version_url(version))["Location"]
    browser = Client()
    browser.force_login(client.user)
    assert browser.get(url).status_code == 200  # same person, other credential: fine
    stranger = Client()
    stranger.force_login(client_as("contributor").user)
    assert stranger.get(url).status_code == 403


def test_bytes_gone_from_storage_are_a_409_before_any_byte_is_sent(client_as, version):
    client = client_as("contributor")
    url = client.post(version_url(version))["Location"]
    get_storage().delete(version.artifact_uri)
    refused = client.get(url)
    assert refused.status_code == 409 and "missing from storage" in refused.json()["detail"]


def test_bytes_changed_in_storage_stop_the_stream_before_its_end(client_as, model):
    # given a large stored artifact, altered in storage (same size) after it was verified
    data = bytes(range(256)) * (CHUNK // 256 * 3 + 5)
    key, sha, size = stored(data, "artifacts")
    version = ModelVersionFactory(model=model, status="ready", artifact_uri=key, sha256=sha, size=size)
    client = client_as("contributor")
    url = client.post(version_url(version))["Location"]
    path = get_storage().local_path(key)
    path.write_bytes(b"\xff" + data[1:])
    # when it is downloaded
    response = client.get(url)
    received = bytearray()
    with pytest.raises(downloads.DownloadCorrupted):
        for chunk in response.streaming_content:
            received += chunk
    # then the client received less than the whole: never a complete wrong file
    assert 0 < len(received) < size


# --- streaming: never the whole object in memory -------------------------------------------------


def _streams_without_holding_it(client, url: str, data: bytes) -> None:
    response = client.get(url)
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Length"] == str(len(data))
    digest, count, chunks = hashlib.sha256(), 0, 0
    tracemalloc.start()
    try:
        for chunk in response.streaming_content:
            assert len(chunk) <= CHUNK
            digest.update(chunk)
            count += len(chunk)
            chunks += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (count, digest.hexdigest()) == (len(data), hashlib.sha256(data).hexdigest())
    assert chunks >= len(data) // CHUNK
    assert peak < len(data) // 3, f"peak {peak} bytes while streaming {len(data)}"


def test_a_large_dataset_streams_from_the_folder_in_chunks(client_as, team):
    data = b"x,label\n" + b"0.123456789,1\n" * (16 * CHUNK // 14)
    key, sha, size = stored(data, "datasets")
    dataset = DatasetFactory(owner_team=team, status="ready", uri=key, sha256=sha, size=size)
    client = client_as("contributor")
    _streams_without_holding_it(client, client.post(dataset_url(dataset))["Location"], data)


@pytest.mark.service
def test_a_large_artifact_streams_from_s3_in_chunks(client_as, model, s3):
    data = bytes(range(256)) * (12 * CHUNK // 256 + 3)
    key, sha, size = stored(data, "artifacts")
    assert s3.stored_keys() == [key]
    version = ModelVersionFactory(model=model, status="ready", artifact_uri=key, sha256=sha, size=size)
    client = client_as("contributor")
    _streams_without_holding_it(client, client.post(version_url(version))["Location"], data)


@pytest.mark.service
def test_a_verified_reference_streams_from_its_bucket_and_a_missing_one_is_a_409(client_as, team, s3):
    uri = s3.put("eval.csv", CSV)
    dataset = DatasetFactory(
        owner_team=team,
        status="ready",
        uri=uri,
        is_reference=True,
        sha256=hashlib.sha256(CSV).hexdigest(),
        size=len(CSV),
    )
    client = client_as("contributor")
    url = client.post(dataset_url(dataset))["Location"]
    with NothingWritten():
        got = client.get(url)
        assert body_of(got) == CSV
    s3.client.delete_object(Bucket=s3.bucket, Key=uri.split("/", 3)[3])
    refused = client.get(url)
    assert refused.status_code == 409 and "missing" in refused.json()["detail"]


def test_a_safe_filename_has_no_path_or_quote():
    assert downloads.safe_filename('../../etc/"passwd"\r\n') == "etc_passwd"
    assert downloads.safe_filename("") == "download"
    assert new_key("artifacts")  # keys stay storage's own, never a file name
