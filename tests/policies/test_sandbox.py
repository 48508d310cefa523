"""Policy packs run sandboxed: built-ins outside the allow-list are refused at upload and at evaluation,
no environment value reaches a decision, and a pack over its time or memory budget fails closed
without holding or growing the process that asked."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from apps.accounts.principals import principal_for_user
from apps.audit.models import AuditEvent
from apps.policies import engine, sandbox
from apps.policies.catalog import packs_in_force, sha256_text, shipped_source
from apps.policies.decisions import decide_with, policy_decide
from apps.policies.inputs import SAMPLE_INPUT, build_input
from apps.policies.models import PolicyBinding, PolicyPack, PolicyPackVersion, package_for
from apps.releases import services as releases
from apps.releases.models import Environment, ReleaseRequest
from tests.factories.policies import compliant_version

pytestmark = pytest.mark.django_db

HEAD = """package assay.probe

import rego.v1

rules := [{"rule": "probe.r", "clause": "Internal P-1", "title": "Probe"}]

"""


def pack(body: str, name: str = "probe") -> str:
    """Pack ``name`` whose ``violations`` rule carries ``body``'s value ``leak`` in its message."""
    return (
        HEAD.replace("assay.probe", "assay." + name.replace("-", "_"))
        + body
        + """
violations contains v if {
	v := {"rule": "probe.r", "message": sprintf("%v", [leak]), "clause": "Internal P-1", "severity": "blocking"}
}
"""
    )


def line_of(source: str, text: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), start=1) if text in line)


# (what the problem names, the call as written, a marker on the line of the call)
FORBIDDEN = [
    ("opa.runtime", "leak := opa.runtime().env", "opa.runtime()"),
    ("time.now_ns", "leak := time.now_ns()", "time.now_ns()"),
    ("rand.intn", 'leak := rand.intn("x", 10)', "rand.intn"),
    ("uuid.rfc4122", 'leak := uuid.rfc4122("x")', "uuid.rfc4122"),
    ("http.send", 'leak := http.send({"method": "GET", "url": "http://127.0.0.1:9/"})', "http.send"),
    ("net.lookup_ip_addr", 'leak := net.lookup_ip_addr("localhost")', "net.lookup_ip_addr"),
    ("net.cidr_expand", 'leak := count(net.cidr_expand("10.0.0.0/8"))', "net.cidr_expand"),
    ("rego.parse_module", 'leak := rego.parse_module("x.rego", "package x")', "rego.parse_module"),
    ("io.jwt.decode_verify", 'leak := io.jwt.decode_verify("a.b.c", {"secret": "s"})', "io.jwt.decode_verify"),
    (
        "crypto.x509.parse_and_verify_certificates",
        'leak := crypto.x509.parse_and_verify_certificates("")',
        "crypto.x509",
    ),
    ("trace", 'leak := 1 if trace("x")', "trace("),
    ("print", 'leak := 1 if print("x", input)', "print("),
    # put in another built-in's place with `with`
    ("opa.runtime", "f(x) := count(x)\nleak := y if {\n\ty := f([1]) with count as opa.runtime\n}", "with count"),
    # inside a function no rule uses yet, an `every` body, a comprehension
    ("opa.runtime", "unused(x) := opa.runtime()\nleak := 1", "unused(x)"),
    ("opa.runtime", "leak := true if {\n\tevery k in [1] { count(opa.runtime()) > k }\n}", "every k"),
    ("opa.runtime", "leak := [e | some e in opa.runtime().env]", "some e in"),
    # through a data reference to a function of the pack
    ("opa.runtime", "g(x) := opa.runtime()\nleak := data.assay.probe.g(1)", "g(x)"),
]


@pytest.fixture
def officer_client(make_user, api_client_for):
    return api_client_for(make_user("compliance_officer", username="olga"))


@pytest.mark.parametrize(
    ("name", "body", "marker"), FORBIDDEN, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FORBIDDEN)]
)
def test_upload_of_a_pack_calling_a_forbidden_builtin_is_a_400_naming_it_and_its_line(
    officer_client, audit_mark, name, body, marker
):
    source = pack(body)
    mark = audit_mark()
    response = officer_client.post("/api/v1/policies/", {"name": "probe", "source": source}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["builtin"] == name
    assert problem["line"] == line_of(source, marker)
    assert f"'{name}' (line {problem['line']})" in problem["detail"]
    assert not PolicyPack.objects.filter(name="probe").exists()
    assert mark.actions() == []


def test_a_module_with_the_older_future_keywords_imports_is_checked_the_same(officer_client):
    source = (
        "package assay.probe\n\nimport future.keywords.contains\nimport future.keywords.if\n\n"
        "stamp := time.now_ns()\n\n"
        'violations contains v if {\n\tstamp > 0\n\tv := {"rule": "probe.r", "message": "m", "clause": "c", '
        '"severity": "blocking"}\n}\n'
    )
    response = officer_client.post("/api/v1/policies/", {"name": "probe", "source": source}, format="json")
    assert response.status_code == 400
    assert (response.json()["builtin"], response.json()["line"]) == ("time.now_ns", 6)


def test_a_pack_of_allowed_builtins_and_forbidden_names_in_comments_and_strings_uploads(officer_client):
    body = (
        "# a comment naming opa.runtime() calls nothing\n"
        'leak := concat(",", sort([lower(s) | some s in split("B,A", ",")]))\n'
        'other := time.parse_rfc3339_ns("2026-01-01T00:00:00Z")\n'
        'words := "packs may not call opa.runtime() or time.now_ns()"'
    )
    response = officer_client.post("/api/v1/policies/", {"name": "probe", "source": pack(body)}, format="json")
    assert response.status_code == 201, response.json()


def _stored_pack(source: str, name: str = "probe") -> PolicyPackVersion:
    """A pack put in the tables directly (as one stored before the sandbox, or by hand), bound to every model."""
    stored = PolicyPack.objects.create(name=name, title=name)
    version = PolicyPackVersion.objects.create(pack=stored, number=1, source=source, sha256=sha256_text(source))
    PolicyBinding.objects.create(pack=stored)
    return version


STAGING = {"name": "staging", "production": False}


def test_a_stored_pack_calling_a_forbidden_builtin_fails_closed_without_running(monkeypatch):
    monkeypatch.setenv("ASSAY_SANDBOX_MARKER", "marker-4f1d9c")
    _stored_pack(pack("leak := opa.runtime().env"))
    decision = policy_decide(version=compliant_version(), environment=STAGING)
    assert not decision.allow
    failures = [v for v in decision.violations if v.pack == "probe"]
    assert [(v.rule, v.severity) for v in failures] == [("assay.forbidden_builtin", "blocking")]
    assert "probe v1" in failures[0].message and "'opa.runtime' (line 7)" in failures[0].message
    # the pack's own rule never ran: its violation (the environment) is not there
    assert "probe.r" not in {v.rule for v in decision.violations}
    assert "marker-4f1d9c" not in json.dumps(decision.as_dict())


LEAKS = [
    "leak := opa.runtime().env",
    'leak := object.get(opa.runtime(), "env", {})',
    "leak := [p | walk(opa.runtime(), [p, _])]",
    "leak := y if {\n\ty := f(1) with count as opa.runtime\n}\nf(x) := count([x])",
    'leak := {k: v | some k, v in opa.runtime().env; startswith(k, "ASSAY")}',
    "leak := opa.runtime()",
]


def test_no_environment_value_reaches_a_stored_decision(monkeypatch, make_user, settings):
    # given secrets in this process's environment and settings, and packs trying every way to read them
    marker = "marker-7e2b55"
    monkeypatch.setenv("ASSAY_SANDBOX_MARKER", marker)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", marker + "-aws")
    settings.SECRET_KEY = marker + "-secret-key"
    sandbox.shutdown()  # children started from now on would inherit the marker if they inherited anything
    for i, body in enumerate(LEAKS):
        _stored_pack(pack(body, name=f"probe-{i}"), name=f"probe-{i}")
    version = compliant_version()
    Environment.objects.get_or_create(name="staging", defaults={"production": False})
    manager = make_user("release_manager", username="max")
    # when a break-glass release is requested (its decision, violations and all, is stored for every viewer)
    release = releases.release_request_create(
        actor=principal_for_user(manager),
        model_name=version.model.name,
        number=version.number,
        environment="staging",
        justification="outage",
        emergency=True,
    )
    # then every probe failed closed, and no secret is anywhere in the stored decision
    stored = ReleaseRequest.objects.get(pk=release.pk).decision
    probes = [v for v in stored["violations"] if v["pack"].startswith("probe")]
    assert len(probes) == len(LEAKS) and {v["rule"] for v in probes} == {"assay.forbidden_builtin"}
    assert marker not in json.dumps(stored)
    events = list(AuditEvent.objects.values())
    assert events and marker not in json.dumps(events, default=str)
    # and the sandboxed processes do not even hold the environment
    pool = sandbox._the_pool()
    assert pool.idle
    for child in pool.idle:
        with open(f"/proc/{child.proc.pid}/environ", "rb") as f:
            environ = f.read()
        assert marker.encode() not in environ
        assert environ.split(b"\0")[:-1] == [b"LANG=C.UTF-8"]


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


@pytest.mark.parametrize("size", ["1000000", "10000000"])
def test_a_huge_comprehension_fails_closed_within_the_memory_budget(settings, size):
    settings.ASSAY_POLICY_MEMORY_MB = 128
    _stored_pack(pack(f"leak := count([x | some x in numbers.range(1, {size})])"))
    version = compliant_version()
    policy_decide(version=version, environment=STAGING)  # the pool's children exist, the shipped packs compiled
    before, started = _rss_kb(), time.monotonic()
    decision = policy_decide(version=version, environment=STAGING)
    assert time.monotonic() - started < 60
    failures = [v for v in decision.violations if v.pack == "probe"]
    assert [(v.rule, v.severity) for v in failures] == [("assay.budget", "blocking")]
    assert "probe v1" in failures[0].message and "memory budget of 128 MB" in failures[0].message
    assert not decision.allow
    assert _rss_kb() - before < 50 * 1024  # evaluated in this process, the comprehension took about 1 GB


def test_a_long_evaluation_is_stopped_at_the_time_budget(settings):
    settings.ASSAY_POLICY_TIMEOUT_MS = 500
    body = "leak := count([1 | some i in numbers.range(1, 20000); some j in numbers.range(1, 20000); i == j])"
    _stored_pack(pack(body))
    started = time.monotonic()
    decision = policy_decide(version=compliant_version(), environment=STAGING)
    assert time.monotonic() - started < 60
    failures = [v for v in decision.violations if v.pack == "probe"]
    assert [(v.rule, v.severity) for v in failures] == [("assay.budget", "blocking")]
    assert "time budget of 500 ms" in failures[0].message
    # the packs after it were answered by a fresh child, as usual
    assert [v for v in decision.violations if v.pack != "probe"] == []
    assert {r["result"] for r in decision.rules if r["pack"] != "probe"} <= {"pass", "not_applicable"}
    # the next decision gets a fresh child and the shipped packs still answer
    again = policy_decide(version=compliant_version(), environment=STAGING)
    assert {v.rule for v in again.violations if v.pack != "probe"} == set()


@pytest.mark.parametrize(
    "body",
    [
        "leak := f(1)\nf(x) := f(x + 1)",  # a function calling itself
        "leak := 1 if a\na if b\nb if a",  # rules calling each other
        # values nested 1000 and 100000 deep (past Python's JSON nesting, past rego-cpp's stack)
        'leak := json.unmarshal(concat("", [concat("", ["[" | some _ in numbers.range(1, 1000)]), '
        'concat("", ["]" | some _ in numbers.range(1, 1000)])]))',
        'leak := json.unmarshal(concat("", [concat("", ["[" | some _ in numbers.range(1, 100000)]), '
        'concat("", ["]" | some _ in numbers.range(1, 100000)])]))',
    ],
)
def test_recursion_and_deep_nesting_fail_closed(body):
    _stored_pack(pack(body))
    decision = policy_decide(version=compliant_version(), environment=STAGING)
    failures = [v for v in decision.violations if v.pack == "probe"]
    assert len(failures) == 1 and failures[0].severity == "blocking"
    assert not decision.allow


def test_uploading_a_pack_over_budget_on_the_sample_input_is_a_400(officer_client, settings):
    settings.ASSAY_POLICY_MEMORY_MB = 64
    source = pack("leak := count([x | some x in numbers.range(1, 10000000)])")
    response = officer_client.post("/api/v1/policies/", {"name": "probe", "source": source}, format="json")
    assert response.status_code == 400
    assert "memory budget of 64 MB" in response.json()["detail"]
    assert not PolicyPack.objects.filter(name="probe").exists()


def test_threads_share_the_pool_and_get_the_same_answers():
    version = compliant_version()
    document, seen = build_input(version=version, environment=STAGING, release=None)
    packs = packs_in_force(model=version.model, environment_name="staging")
    expected = policy_decide(version=version, environment=STAGING).as_dict()
    answers, errors = [], []

    def decide():  # no database in the threads: the packs and the document are read above
        try:
            for _ in range(5):
                decision = decide_with(document=document, seen=seen, packs=packs, artifact_sha256=version.sha256)
                answers.append(decision.as_dict())
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=decide) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(answers) == 20 and all(a["violations"] == expected["violations"] for a in answers)
    assert all(a["rules"] == expected["rules"] for a in answers)


def test_packs_after_one_over_budget_are_answered_by_a_fresh_child(settings):
    settings.ASSAY_POLICY_TIMEOUT_MS = 500
    slow = pack("leak := count([1 | some i in numbers.range(1, 20000); some j in numbers.range(1, 20000); i == j])")
    shipped = [(shipped_source(n), sha256_text(shipped_source(n)), package_for(n)) for n in ("security", "gdpr")]
    batch = [shipped[0], (slow, sha256_text(slow), "assay.probe"), shipped[1]]
    results = engine.evaluate_each(packs=batch, document=SAMPLE_INPUT)
    assert isinstance(results[0], engine.PackResult) and isinstance(results[2], engine.PackResult)
    assert isinstance(results[1], engine.BudgetExceeded) and results[1].reason == "time"
    alone = engine.evaluate(source=shipped[1][0], sha256=shipped[1][1], package=shipped[1][2], document=SAMPLE_INPUT)
    assert results[2] == alone


def test_a_forked_process_starts_children_of_its_own():
    # given a process whose pool has a child (as a Celery prefork parent or a pre-loading server may)
    batch = [(shipped_source(n), sha256_text(shipped_source(n)), package_for(n)) for n in ("security", "gdpr")]
    expected = engine.evaluate_each(packs=batch, document=SAMPLE_INPUT)
    inherited = {child.proc.pid for child in sandbox._children}
    assert inherited
    # when it forks and the forked process asks for the same evaluations
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the forked process reports through the pipe)
        try:
            os.close(read_end)
            results = engine.evaluate_each(packs=batch, document=SAMPLE_INPUT)
            own = {child.proc.pid for child in sandbox._children}
            verdict = b"ok" if results == expected and own and not own & inherited else b"different"
            os.write(write_end, verdict)
        except BaseException as exc:  # noqa: BLE001
            os.write(write_end, repr(exc).encode()[:300])
        finally:
            os._exit(0)
    os.close(write_end)
    verdict = os.read(read_end, 400)
    os.close(read_end)
    os.waitpid(pid, 0)
    # then it got the same answers from children of its own, and the parent's children still answer
    assert verdict == b"ok"
    assert engine.evaluate_each(packs=batch, document=SAMPLE_INPUT) == expected


def test_a_sandbox_that_cannot_start_blocks_every_pack(monkeypatch, tmp_path, officer_client):
    # given children that exit at once (their script is missing) and no idle child left
    sandbox.shutdown()
    monkeypatch.setattr(sandbox, "CHILD", tmp_path / "missing.py")
    version = compliant_version()
    # when a decision is asked for
    decision = policy_decide(version=version, environment=STAGING)
    # then every pack fails closed with a clear violation
    assert not decision.allow and decision.violations
    assert all(v.severity == "blocking" and v.rule.endswith(".evaluation_error") for v in decision.violations)
    assert all("did not start" in v.message for v in decision.violations)
    # and through the API it is a decision, not a server error
    url = f"/api/v1/models/{version.model.name}/versions/{version.number}/policy-decision/?environment=staging"
    response = officer_client.get(url)
    assert response.status_code == 200 and response.json()["allow"] is False


def test_a_child_whose_resident_memory_passes_its_limit_is_stopped():
    # given a child whose resident-size limit is below what it uses (the address-space limit not reached)
    timeout_ms, memory_mb = sandbox.limits()
    source = pack("leak := count([x | some x in numbers.range(1, 300000)])")
    request = {"op": "evaluate", "packs": [{"source": source, "sha256": sha256_text(source), "package": "assay.probe"}]}
    with sandbox._the_pool().child(timeout_ms, memory_mb, 2) as child:
        child.rss_limit_kb = 1
        # when it evaluates for longer than one watch interval
        answers = child.request(request, json.dumps(SAMPLE_INPUT).encode())
    # then it was killed and the pack is over its memory budget
    assert len(answers) == 1 and isinstance(answers[0], sandbox.SandboxFailure)
    assert answers[0].reason == "memory" and f"memory budget of {memory_mb} MB" in answers[0].message
    assert child.proc.returncode is not None and not child.alive


def test_an_answer_larger_than_the_limit_fails_closed():
    # a violation message of 5 MB: within the memory budget, but no decision should carry it
    _stored_pack(pack(f'leak := concat("", ["{"x" * 100}" | some _ in numbers.range(1, 50000)])'))
    decision = policy_decide(version=compliant_version(), environment=STAGING)
    failures = [v for v in decision.violations if v.pack == "probe"]
    assert [(v.rule, v.severity) for v in failures] == [("assay.budget", "blocking")]
    assert "larger than 4096 KiB" in failures[0].message
    assert len(json.dumps(decision.as_dict())) < 1024 * 1024
