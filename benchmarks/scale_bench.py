"""Scale benchmark: every list, page and the gate on a small and a large registry, side by side.

Two PostgreSQL databases are seeded in bulk (``INSERT ... SELECT generate_series`` and
``COPY``): a small one (100 models, 1,000 versions, 1,000 datasets, 10,000 audit events) and a
large one (10,000 models, 100,000 versions, 10,000 datasets, 1,000,000 audit events). The
audit events carry a valid hash chain, computed here from the documented canonical form.
A seeded database is kept and reused when its row counts are right (``--reseed`` seeds it
again); it is migrated on every run, so it follows the code.

For each size the benchmark starts a web server as ``benchmarks/servers.py`` does
(Granian, ``DJANGO_DEBUG=0``), creates a global auditor/compliance account with a read
token and a dashboard session and counts the SQL queries of each route once (in-process, with
the same settings). Both servers run at once; each route is then driven with wrk
(``benchmarks/loadgen.py``) at 1 and 16 clients on the small server and right after on the large
one, so a change in the machine's load between routes weighs on both sizes alike. It prints requests
per second and p99 at each size, the ratio large/small (the target is at least 0.8), the query counts
and the machine's load and speed index.

``--mlflow`` also starts MLflow (its own virtualenv, ``servers.start_mlflow``) on a database of
the same server, registers one model version there and drives MLflow's get-version
(``GET /api/2.0/mlflow/model-versions/get``) with the same wrk, beside Assay's gate.

Run it with the project's virtualenv (see docs for the exact command):

    $ASSAY_VENV/bin/python benchmarks/scale_bench.py --admin-url postgres://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
import machine  # noqa: E402
import servers  # noqa: E402

ROOT = servers.ROOT


@dataclass(frozen=True)
class Size:
    """How many rows a seeded database holds."""

    name: str
    teams: int
    models: int
    versions_per_model: int
    datasets: int
    events: int

    @property
    def versions(self) -> int:
        return self.models * self.versions_per_model


SIZES = {
    "small": Size("small", teams=51, models=100, versions_per_model=10, datasets=1_000, events=10_000),
    "large": Size("large", teams=100, models=10_000, versions_per_model=10, datasets=10_000, events=1_000_000),
}

TEAM_PREFIX = "scale-t-"
# Team 0 owns the first 50 models at every size, so a list filtered by it fills one page (50 rows) on
# both databases; the other models are spread over the other teams. Likewise the small size has 51
# teams, so the team list fills a page too: a page compared across sizes shows as many rows.
FULL_PAGE = 50
MODEL_PREFIX = "scale-model-"
USER = "scale-reader"


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# Seeding


def _connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def database_exists(admin_url: str, name: str) -> bool:
    with _connect(admin_url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def seeded_counts(url: str) -> dict[str, int]:
    """The seeded rows a database holds now (zeros when it is not migrated)."""
    with _connect(url) as conn:
        try:
            return {
                "teams": conn.execute(
                    "SELECT count(*) FROM accounts_team WHERE name LIKE %s", [TEAM_PREFIX + "%"]
                ).fetchone()[0],
                "models": conn.execute(
                    "SELECT count(*) FROM registry_registeredmodel WHERE name LIKE %s", [MODEL_PREFIX + "%"]
                ).fetchone()[0],
                "versions": conn.execute(
                    "SELECT count(*) FROM registry_modelversion v JOIN registry_registeredmodel m ON m.id = v.model_id"
                    " WHERE m.name LIKE %s",
                    [MODEL_PREFIX + "%"],
                ).fetchone()[0],
                "datasets": conn.execute(
                    "SELECT count(*) FROM registry_dataset WHERE name LIKE 'scale-dataset-%'"
                ).fetchone()[0],
                "events": conn.execute("SELECT count(*) FROM audit_event WHERE request_id LIKE 'scale-%'").fetchone()[
                    0
                ],
            }
        except Exception:  # not migrated yet
            return {"teams": 0, "models": 0, "versions": 0, "datasets": 0, "events": 0}


def counts_match(counts: dict[str, int], size: Size) -> bool:
    return counts == {
        "teams": size.teams,
        "models": size.models,
        "versions": size.versions,
        "datasets": size.datasets,
        "events": size.events,
    }


def seed_registry(url: str, size: Size) -> None:
    """Teams, models, versions (ready, referenced S3 artifacts) and datasets, in a few statements."""
    with _connect(url) as conn:
        conn.execute(
            "INSERT INTO accounts_team (created_at, updated_at, name, display_name, description)"
            " SELECT now(), now(), %s || i, 'Scale team ' || i, '' FROM generate_series(0, %s - 1) AS i",
            [TEAM_PREFIX, size.teams],
        )
        conn.execute(
            "INSERT INTO registry_registeredmodel (created_at, updated_at, name, description, intended_use,"
            " limitations, risk_tier, data_categories, jurisdictions, owner_team_id, last_version_number,"
            " default_evidence, automated_decisions, dpia_reference, fairness_thresholds, human_oversight,"
            " human_review_path, minimisation_justification)"
            " SELECT now() - make_interval(secs => i), now(), %s || lpad(i::text, 6, '0'), 'Seeded model ' || i, '',"
            " '', (ARRAY['minimal', 'limited', 'high'])[1 + i %% 3], '[]', '[]', t.id, %s, '[]', false, '', '{}',"
            " '', '', '' FROM generate_series(1, %s) AS i"
            " JOIN accounts_team t ON t.name = %s || CASE WHEN i <= %s THEN 0 ELSE 1 + i %% (%s - 1) END",
            [MODEL_PREFIX, size.versions_per_model, size.models, TEAM_PREFIX, FULL_PAGE, size.teams],
        )
        conn.execute(
            "INSERT INTO registry_modelversion (created_at, updated_at, number, status, status_reason, format,"
            " artifact_uri, artifact_is_reference, sha256, size, description, metrics, source_repository,"
            " source_commit, ci_run_url, model_card, model_id)"
            " SELECT now() - make_interval(secs => m.id * 100 - n), now(), n, 'ready', '', 'onnx',"
            " 's3://assay-scale/' || m.name || '/' || n || '/model.onnx', true,"
            " md5(m.id || '/' || n) || md5(n || '/' || m.id), 6000, '', '{\"auc\": 0.8}', '', '', '', '{}', m.id"
            " FROM registry_registeredmodel m CROSS JOIN generate_series(1, %s) AS n WHERE m.name LIKE %s",
            [size.versions_per_model, MODEL_PREFIX + "%"],
        )
        conn.execute(
            "INSERT INTO registry_dataset (created_at, updated_at, name, description, uri, is_reference, format,"
            " status, status_reason, sha256, size, row_count, schema, owner_team_id)"
            " SELECT now() - make_interval(secs => i), now(), 'scale-dataset-' || i, '',"
            " 's3://assay-scale/datasets/' || i || '.csv', true, 'csv', 'ready', '', md5('d' || i) || md5(i || 'd'),"
            " 1000, 100, '{}', t.id FROM generate_series(1, %s) AS i JOIN accounts_team t ON t.name = %s || (i %% %s)",
            [size.datasets, TEAM_PREFIX, size.teams],
        )


_ACTIONS = (
    "model.updated",
    "model_version.created",
    "model_version.verified",
    "dataset.created",
    "evidence_run.succeeded",
    "release.requested",
    "release.approval_recorded",
)
_COPY_COLUMNS = (
    "event_id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_name",
    "token_id",
    "source",
    "client_ip",
    "request_id",
    "action",
    "outcome",
    "target_type",
    "target_id",
    "target_name",
    "related_type",
    "related_id",
    "before",
    "after",
    "reason",
    "artifact_sha256",
)


def _canonical(obj: dict) -> bytes:
    """The chain's canonical form (version 1), as the audit trail documents it."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seed_audit(url: str, size: Size) -> None:
    """``size.events`` sealed events appended to the chain's head, with valid hashes: events and seals by COPY."""
    rng = random.Random(7)
    with _connect(url) as conn:
        head = conn.execute("SELECT seq, hash FROM audit_seal ORDER BY seq DESC LIMIT 1").fetchone()
        unsealed = conn.execute("SELECT count(*) FROM audit_pending").fetchone()[0]
        if unsealed:
            raise SystemExit("the database holds unsealed audit events: seal them first (manage.py audit_seal)")
        seq, prev = (head[0], head[1]) if head else (0, "0" * 64)
        start = datetime.now(UTC) - timedelta(days=365)
        step = timedelta(days=364) / size.events
        sealed_at = datetime.now(UTC)
        # Events into audit_event (its trigger puts each on the sealer's work list), their seals into a temporary
        # table joined to the events' ids into audit_seal; then the work list is cleared of them.
        conn.execute(
            "CREATE TEMP TABLE scale_seal (seq bigint, event_id uuid, prev_hash text, hash text, sealed_at timestamptz)"
        )
        seals: list[tuple] = []
        with conn.cursor() as cursor, cursor.copy(f"COPY audit_event ({', '.join(_COPY_COLUMNS)}) FROM STDIN") as copy:
            for i in range(size.events):
                seq += 1
                event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                occurred = start + step * i
                occurred_text = occurred.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
                action = _ACTIONS[i % len(_ACTIONS)]
                target_id = str(1 + i % max(size.models, 1))
                after = {"n": i, "note": "seeded"}
                obj = {
                    "v": 1,
                    "seq": seq,
                    "event_id": event_id.hex,
                    "occurred_at": occurred_text,
                    "actor_type": "user",
                    "actor_id": str(1 + i % 50),
                    "token_id": "",
                    "source": "api",
                    "client_ip": "127.0.0.1",
                    "request_id": f"scale-{i}",
                    "action": action,
                    "outcome": "success",
                    "target_type": "model",
                    "target_id": target_id,
                    "related_type": "",
                    "related_id": "",
                    "before": None,
                    "after": after,
                    "reason": "",
                    "artifact_sha256": "",
                }
                digest = hashlib.sha256(prev.encode() + b"\n" + _canonical(obj)).hexdigest()
                copy.write_row(
                    (
                        str(event_id),
                        occurred,
                        "user",
                        obj["actor_id"],
                        f"user {obj['actor_id']}",
                        "",
                        "api",
                        "127.0.0.1",
                        obj["request_id"],
                        action,
                        "success",
                        "model",
                        target_id,
                        f"{MODEL_PREFIX}{int(target_id):06d}",
                        "",
                        "",
                        None,
                        json.dumps(after),
                        "",
                        "",
                    )
                )
                seals.append((seq, str(event_id), prev, digest, sealed_at))
                prev = digest
        with conn.cursor() as cursor, cursor.copy("COPY scale_seal FROM STDIN") as copy:
            for row in seals:
                copy.write_row(row)
        conn.execute(
            "INSERT INTO audit_seal (seq, event_pk, prev_hash, hash, sealed_at) "
            "SELECT s.seq, e.id, s.prev_hash, s.hash, s.sealed_at FROM scale_seal s JOIN audit_event e USING (event_id)"
        )
        conn.execute("DELETE FROM audit_pending WHERE event_pk IN (SELECT event_pk FROM audit_seal)")


def prepare_database(args: argparse.Namespace, size: Size, env: dict) -> tuple[str, str]:
    """The size's database, migrated and seeded (reused when its counts are right); returns (name, URL)."""
    name = f"{args.db_prefix}_{size.name}"
    url = args.admin_url.rsplit("/", 1)[0] + "/" + name
    fresh = args.reseed or not database_exists(args.admin_url, name)
    if not fresh and not counts_match(seeded_counts(url), size):
        log(f"{name}: row counts differ from the {size.name} size: seeding it again")
        fresh = True
    if fresh:
        servers.recreate_database(args.admin_url, name)
    t0 = time.monotonic()
    run_manage({**env, "DATABASE_URL": url}, "migrate", "--no-input", "-v0")
    if fresh:
        log(f"{name}: seeding {size.models:,} models, {size.versions:,} versions, {size.events:,} audit events")
        run_manage({**env, "DATABASE_URL": url}, "shell", "-c", _SEAL)
        seed_registry(url, size)
        seed_audit(url, size)
        with _connect(url) as conn:
            conn.execute("VACUUM ANALYZE")
        log(f"{name}: seeded in {time.monotonic() - t0:.0f} s")
    else:
        log(f"{name}: reusing the seeded database (--reseed seeds it again)")
    return name, url


# ---------------------------------------------------------------------------------------------
# The reader, its token and session; query counts


_SEAL = "from apps.audit.chain import seal_pending; seal_pending(blocking=True)"

_SETUP = """
import json
from django.test import Client
from apps.accounts import services as accounts
from apps.accounts.models import User
from apps.accounts.principals import principal_for_user
from apps.audit.chain import seal_pending
from apps.core.principals import Principal
from apps.policies import services as policies
from apps.policies.models import PolicyBinding, PolicyPack
from apps.rbac import services as rbac
system = Principal.system("assay-scale-bench")
user = User.objects.filter(username=USER).first() or accounts.user_create(actor=system, username=USER, password=None)
for role in ("auditor", "compliance_officer", "admin"):
    rbac.role_grant(actor=system, subject=user, role=role)
if BIND_PACKS and not PolicyBinding.objects.exists():
    for pack in PolicyPack.objects.order_by("name"):
        policies.policy_binding_create(actor=principal_for_user(user), pack_name=pack.name)
token, full = accounts.token_create(actor=system, name="scale-bench", user=user, scopes=["read", "audit:read"])
client = Client()
client.force_login(user)
seal_pending(blocking=True)
print("SETUP " + json.dumps({"token": full, "session": client.cookies["sessionid"].value}))
"""

_QUERY_COUNTS = """
import json
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_AUTHORIZATION="Bearer " + TOKEN)
client.cookies["sessionid"] = SESSION
counts = {}
for label, path in PATHS:
    with CaptureQueriesContext(connection) as queries:
        status = client.get(path, HTTP_HOST="127.0.0.1").status_code
    counts[label] = [status, len(queries)]
print("COUNTS " + json.dumps(counts))
"""


def run_manage(env: dict, *argv: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(argv[:2])} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def _tagged(output: str, tag: str) -> dict:
    line = next(x for x in output.splitlines() if x.startswith(tag + " "))
    return json.loads(line[len(tag) + 1 :])


def setup_reader(env: dict, bind_packs: bool) -> dict:
    code = f"USER={USER!r}\nBIND_PACKS={bind_packs!r}\n" + _SETUP
    return _tagged(run_manage(env, "shell", "-c", code), "SETUP")


# The gate answers from the stored decisions the workers make; no worker runs here, so the measured
# version's are made before the load (a run on code without stored decisions skips this).
_GATE_DECISIONS = """
from apps.registry.models import ModelVersion
try:
    from apps.releases.gate_decisions import gate_decisions_refresh
except ImportError:
    gate_decisions_refresh = None
if gate_decisions_refresh is not None:
    ids = list(ModelVersion.objects.filter(model__name=MODEL, number=5).values_list("pk", flat=True))
    print("GATE_DECISIONS", gate_decisions_refresh(version_ids=ids, reason="benchmark"))
"""


def gate_decisions(env: dict, size: Size) -> None:
    model = f"{MODEL_PREFIX}{size.models // 2:06d}"
    run_manage(env, "shell", "-c", f"MODEL={model!r}\n" + _GATE_DECISIONS)


def query_counts(env: dict, reader: dict, routes: list[Route]) -> dict:
    paths = [(r.label, r.path) for r in routes]
    code = f"TOKEN={reader['token']!r}\nSESSION={reader['session']!r}\nPATHS={paths!r}\n" + _QUERY_COUNTS
    return _tagged(run_manage(env, "shell", "-c", code), "COUNTS")


# ---------------------------------------------------------------------------------------------
# Routes and load


@dataclass(frozen=True)
class Route:
    """One GET the benchmark drives: through the API (token) or the dashboard (session)."""

    label: str
    path: str
    dashboard: bool = False


def routes(size: Size) -> list[Route]:
    """Every list and page, the same paths at both sizes (the model in the middle of the inventory)."""
    model = f"{MODEL_PREFIX}{size.models // 2:06d}"
    team = f"{TEAM_PREFIX}0"  # owns FULL_PAGE models at every size
    return [
        Route("api models", "/api/v1/models/"),
        Route("api models ?search", "/api/v1/models/?search=model-0000"),
        Route("api models ?team", f"/api/v1/models/?team={team}"),
        Route("api model", f"/api/v1/models/{model}/"),
        Route("api versions", f"/api/v1/models/{model}/versions/"),
        Route("api version", f"/api/v1/models/{model}/versions/5/"),
        Route("api datasets", "/api/v1/datasets/"),
        Route("api evidence (version)", f"/api/v1/models/{model}/versions/5/evidence/"),
        Route("api releases", "/api/v1/releases/"),
        Route("api facts changes", "/api/v1/facts-changes/"),
        Route("api audit events", "/api/v1/audit/events/"),
        Route("api audit ?action", "/api/v1/audit/events/?action=model.updated"),
        Route("api audit ?target", "/api/v1/audit/events/?target=model:42"),
        Route("api teams", "/api/v1/teams/"),
        Route("api users", "/api/v1/users/"),
        Route("api role bindings", "/api/v1/role-bindings/"),
        Route("api tokens", "/api/v1/tokens/"),
        Route("api policies", "/api/v1/policies/"),
        Route("gate", f"/api/v1/models/{model}/versions/5/gate/?environment=production"),
        Route("page inventory", "/", dashboard=True),
        Route("page inventory ?team", f"/?team={team}", dashboard=True),
        Route("page model", f"/models/{model}/", dashboard=True),
        Route("page version", f"/models/{model}/versions/5/", dashboard=True),
        Route("page datasets", "/datasets/", dashboard=True),
        Route("page releases", "/releases/", dashboard=True),
        Route("page approvals", "/approvals/", dashboard=True),
        Route("page audit", "/audit/", dashboard=True),
        Route("page audit ?action", "/audit/?action=model.updated", dashboard=True),
        Route("page access", "/access/", dashboard=True),
        Route("page webhooks", "/webhooks/", dashboard=True),
        Route("page tokens", "/tokens/", dashboard=True),
    ]


_LUA_GET = r"""
codes = {}
samples = {}
nsamples = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  codes = {}
  samples = {}
  nsamples = 0
end

function response(status, headers, body)
  local k = tostring(status)
  codes[k] = (codes[k] or 0) + 1
  if status ~= 200 and nsamples < 3 then
    nsamples = nsamples + 1
    samples[nsamples] = k .. " " .. string.sub(body or "", 1, 300)
  end
end

local function esc(s)
  return (string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end))
end

function done(summary, latency, requests)
  local all, sample_list = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do all[k] = (all[k] or 0) + v end
    for _, v in ipairs(t:get("samples")) do table.insert(sample_list, '"' .. esc(v) .. '"') end
  end
  local parts = {}
  for k, v in pairs(all) do table.insert(parts, string.format('"%s":%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
    '"codes":{%s},"samples":[%s]}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    table.concat(parts, ","), table.concat(sample_list, ",")))
end
"""


def get_script(folder: Path, name: str, headers: dict[str, str]) -> Path:
    """A wrk script sending the URL's GET with ``headers`` and counting status codes (200 expected)."""
    lines = ["wrk.method = 'GET'"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script = folder / f"{name}.lua"
    script.write_text("\n".join(lines) + "\n" + _LUA_GET)
    return script


def drive(
    wrk: str,
    script: Path,
    url: str,
    *,
    label: str,
    clients: list[int],
    duration: float,
    pgid: int,
    db: str,
    headers: dict | None = None,
    generator: str = "asyncio",
    keep_alive: bool = False,
) -> dict:
    """The load generator at each client count, after an unmeasured second that warms every worker's caches
    and templates for this route; {clients: {rate, p99_ms, ok, not_ok, samples, cpu}}.

    ``asyncio`` (the default, ``loadgen.run_asyncio``, as the registration benchmark drives Assay and MLflow)
    sends ``headers`` with each GET, a new connection per request unless ``keep_alive``; ``wrk`` runs
    ``script`` (the same headers) with kept-alive connections."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    base, path = f"{scheme}://{host}", "/" + path
    get = loadgen.Load(path=path, headers=headers or {}, body=lambda *_: b"", expected=200, method="GET")

    def step_of(c: int, seconds: float, name: str):
        if generator == "wrk":
            return loadgen.run(wrk, script, url, concurrency=c, duration_s=seconds, label=name, expected=200, threads=1)
        return loadgen.run_asyncio(base, get, concurrency=c, duration_s=seconds, label=name, keep_alive=keep_alive)

    step_of(4, 1, "warm-up")
    out = {}
    for c in clients:
        before, t0 = servers.cpu_snapshot(), time.monotonic()
        step = step_of(c, duration, label)
        cpu = servers.cpu_split(before, servers.cpu_snapshot(), pgid, time.monotonic() - t0, db)
        out[c] = {
            "rate": step.rate,
            "p99_ms": step.p99_ms,
            "ok": step.ok,
            "not_ok": step.not_ok,
            "samples": step.samples[:2],
            "cpu": cpu,
        }
    return out


def assay_env(args: argparse.Namespace, work: Path, url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "scale-bench-" + "k" * 40,  # stable: the dashboard session outlives one server
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": args.broker,
            "ASSAY_CACHE_URL": args.cache,
            "ASSAY_USER_RATE": "off",
            "ASSAY_VAR_DIR": str(work / "var"),
            "ASSAY_STORAGE_URL": (work / "artifacts").as_uri(),
            "ASSAY_LOG_LEVEL": "WARNING",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def prepare_size(args: argparse.Namespace, size: Size, work: Path) -> dict:
    """Seed (or reuse) and migrate the size's database, make its reader, count each route's queries and start
    its server: everything before the load."""
    folder = work / size.name
    (folder / "artifacts").mkdir(parents=True)
    env = assay_env(args, folder, "")
    name, url = prepare_database(args, size, env)
    env["DATABASE_URL"] = url
    reader = setup_reader(env, bind_packs=not args.no_packs)
    gate_decisions(env, size)
    chosen = [r for r in routes(size) if not args.only or any(word in r.label for word in args.only)]
    counts = query_counts(env, reader, chosen)
    return {
        "size": size,
        "db": name,
        "routes": {r.label: r for r in chosen},
        "counts": counts,
        "api_headers": {"Authorization": f"Bearer {reader['token']}"},
        "page_headers": {"Cookie": f"sessionid={reader['session']}"},
        "api_script": get_script(work, f"api-{size.name}", {"Authorization": f"Bearer {reader['token']}"}),
        "page_script": get_script(work, f"page-{size.name}", {"Cookie": f"sessionid={reader['session']}"}),
        "server": servers.start_server(servers.ServerConfig.parse(args.server), env, folder, size.name),
    }


def measure(args: argparse.Namespace, sizes: list[Size], work: Path, wrk: str) -> dict:
    """Every route on every size, side by side: both servers run at once and each route is driven on one size
    right after the other, so a change in the machine's load between routes weighs on both sizes alike."""
    prepared: list[dict] = []
    results: dict[str, dict] = {size.name: {} for size in sizes}
    try:
        for size in sizes:
            prepared.append(prepare_size(args, size, work))
        for label in prepared[0]["routes"]:
            for side in prepared:
                route = side["routes"].get(label)
                if route is None:
                    continue
                server = side["server"]
                got = drive(
                    wrk,
                    side["page_script"] if route.dashboard else side["api_script"],
                    server.base_url + route.path,
                    label=label,
                    clients=args.clients,
                    duration=args.duration,
                    pgid=os.getpgid(server.proc.pid),
                    db=side["db"],
                    headers=side["page_headers"] if route.dashboard else side["api_headers"],
                    generator=args.generator,
                    keep_alive=args.keep_alive,
                )
                got["queries"] = side["counts"].get(label, [0, 0])[1]
                got["status"] = side["counts"].get(label, [0, 0])[0]
                results[side["size"].name][label] = got
                c1 = got[args.clients[0]]
                name = side["size"].name
                print(f"    {name:5} {label:28} {c1['rate']:8.1f} req/s  p99 {c1['p99_ms']:7.1f} ms", flush=True)
    finally:
        for side in prepared:
            side["server"].stop()
    return results


# ---------------------------------------------------------------------------------------------
# MLflow's get-version, for the gate


def measure_mlflow(args: argparse.Namespace, work: Path, wrk: str) -> dict | None:
    venv = Path(args.mlflow_venv)
    if not (venv / "bin" / "mlflow").exists():
        log(f"MLflow is not installed in {venv}: the comparison is skipped")
        return None
    url = servers.recreate_database(args.admin_url, f"{args.db_prefix}_mlflow")
    backend = "postgresql+psycopg2://" + url.split("://", 1)[1]  # the driver pinned in requirements-mlflow.txt
    server = servers.start_mlflow(venv, backend, 2, work, "s3://assay-scale/mlflow")
    try:
        import urllib.request

        def post(path: str, body: dict) -> dict:
            req = urllib.request.Request(
                server.base_url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())

        post("/api/2.0/mlflow/registered-models/create", {"name": "scale-model"})
        for _ in range(5):
            post("/api/2.0/mlflow/model-versions/create", {"name": "scale-model", "source": "s3://assay-scale/m"})
        script = get_script(work, "mlflow", {})
        pgid = os.getpgid(server.proc.pid)
        return drive(
            wrk,
            script,
            server.base_url + "/api/2.0/mlflow/model-versions/get?name=scale-model&version=5",
            label="mlflow get-version",
            clients=args.clients,
            duration=args.duration,
            pgid=pgid,
            db=f"{args.db_prefix}_mlflow",
            generator=args.generator,
            keep_alive=args.keep_alive,
        )
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# Report


def report(results: dict, args: argparse.Namespace, facts: dict, mlflow: dict | None) -> str:
    small, large = results.get("small", {}), results.get("large", {})
    lines = [
        f"scale benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, server {args.server},"
        f" {args.generator}{' (kept-alive connections)' if args.keep_alive or args.generator == 'wrk' else ''}"
        f" {args.duration:.0f} s a step",
        machine.line(facts),
        "",
    ]
    header = "| route | queries | " + " | ".join(
        f"small {c}c req/s | small {c}c p99 ms | large {c}c req/s | large {c}c p99 ms | large/small {c}c"
        for c in args.clients
    )
    lines.append(header + " |")
    lines.append("|" + " --- |" * (2 + 5 * len(args.clients)))
    below = []
    for label in dict.fromkeys([*small, *large]):
        s, g = small.get(label), large.get(label)
        queries = "/".join(str(x[label]["queries"]) for x in (small, large) if label in x)
        cells = [label, queries]
        for c in args.clients:
            sc, gc = (s or {}).get(c), (g or {}).get(c)
            ratio = gc["rate"] / sc["rate"] if sc and gc and sc["rate"] else None
            if ratio is not None and ratio < 0.8:
                below.append(f"{label} at {c} clients ({ratio:.2f})")
            cells += [
                f"{sc['rate']:.1f}" if sc else "-",
                f"{sc['p99_ms']:.1f}" if sc else "-",
                f"{gc['rate']:.1f}" if gc else "-",
                f"{gc['p99_ms']:.1f}" if gc else "-",
                f"{ratio:.2f}" if ratio is not None else "-",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    errors = [
        f"{size} {label} {c}c: {step['not_ok']} not 200 {step['samples']}"
        for size, routes_ in results.items()
        for label, by in routes_.items()
        for c, step in by.items()
        if isinstance(c, int) and step["not_ok"]
    ]
    if mlflow:
        lines.append("")
        for c in args.clients:
            gate = (large.get("gate") or small.get("gate") or {}).get(c)
            ratio = f", gate/MLflow {gate['rate'] / mlflow[c]['rate']:.2f}" if gate and mlflow[c]["rate"] else ""
            got = mlflow[c]
            lines.append(f"MLflow get-version {c} clients: {got['rate']:.1f} req/s, p99 {got['p99_ms']:.1f} ms{ratio}")
    lines.append("")
    lines.append("below 0.8 of the small rate: " + (", ".join(below) if below else "none"))
    if errors:
        lines.append("answers that were not 200: " + "; ".join(errors))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--db-prefix", default="assay_scale", help="databases <prefix>_small and <prefix>_large")
    parser.add_argument("--sizes", default="small,large")
    parser.add_argument("--reseed", action="store_true", help="seed the databases again even when their counts match")
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per route and client count")
    parser.add_argument("--server", default="granian:2x2")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--only", nargs="*", default=[], help="only routes whose label holds one of these words")
    parser.add_argument("--no-packs", action="store_true", help="do not bind the shipped policy packs globally")
    parser.add_argument("--mlflow", action="store_true", help="also drive MLflow's get-version (for the gate)")
    parser.add_argument("--mlflow-venv", default="/var/cache/assay/mlflow-venv")
    parser.add_argument("--json", default="", help="write every figure to this file")
    parser.add_argument(
        "--generator",
        choices=["asyncio", "wrk"],
        default="asyncio",
        help="the load generator for every route and MLflow (default asyncio, as the registration benchmark)",
    )
    parser.add_argument("--keep-alive", action="store_true", help="asyncio: keep one connection per client")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    wrk = loadgen.ensure_wrk()
    facts = machine.describe()
    print(machine.line(facts), flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="assay-scale-") as tmp:
        work = Path(tmp)
        results = measure(args, [SIZES[name] for name in args.sizes.split(",")], work, wrk)
        mlflow = measure_mlflow(args, work, wrk) if args.mlflow else None
    facts_after = machine.describe()
    text = report(results, args, facts_after, mlflow)
    print()
    print(text)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": [facts, facts_after], "results": results, "mlflow": mlflow}, indent=1, default=str)
        )


if __name__ == "__main__":
    main()
