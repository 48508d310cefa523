"""The process that compiles and evaluates Rego packs for ``apps/policies/sandbox.py``.

It runs as ``python -I sandbox_child.py MEMORY_MB CPU_SECONDS`` with an empty environment, so a
pack that reads the process environment (``opa.runtime()``) finds nothing to read; it imports
the standard library and ``regopy`` only, never Django or the settings, so no secret is in its
memory either. Before its first request it limits its own address space to what it uses then
plus ``MEMORY_MB`` (``RLIMIT_AS``; an allocation past it aborts the process) and, before every
request, its CPU time to what it used so far plus ``CPU_SECONDS`` (``RLIMIT_CPU``; a backstop
for the parent's wall-clock timeout, which kills the process first).

Every compiled module is checked against ``ALLOWED_BUILTINS`` from the compiler's own plan (the
built-ins it resolved, aliases and ``with`` replacements included) before it is ever queried:
a module that calls anything else is refused, here as well as at upload.

Protocol, on the pipes the parent gave as stdin and stdout (fds 0 and 1 are then pointed at
/dev/null, so anything rego-cpp prints goes nowhere): each request is two frames, a JSON header
``{"op": "check"|"evaluate", "packs": [{"source", "sha256", "package"}, ...]}`` and a payload
(the input document as JSON text for ``evaluate``, empty otherwise), each frame a 4-byte
big-endian length and its bytes. Once started, the child says ``{"ready": true, "workdir", "rss_kb"}``; it answers
each pack in order, one frame as soon as that pack is done: ``{"ok": true, "result": <the
package document>}`` or ``{"error": "syntax"|"forbidden"|"evaluation"|"memory"|"too_large", ...}``,
each with ``rss_kb`` (its resident size).

The script must run with ``-I``: its own folder on ``sys.path`` would let ``apps/policies/selectors.py``
shadow the standard library's ``selectors``.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import struct
import sys
import tempfile

# Pure, deterministic built-ins a pack may call: no file, network or environment access, no clock
# or randomness (a decision must be reproducible from its input document), no printing. The
# comparison and arithmetic operators are built-ins too (``gt``, ``plus``, ``internal.member_2``
# for ``in``). Any other name, including ones a later rego-cpp adds, is refused.
ALLOWED_BUILTINS = frozenset(
    """
    abs and array.concat array.reverse array.slice
    base64.decode base64.encode base64.is_valid base64url.decode base64url.encode base64url.encode_no_pad
    bits.and bits.lsh bits.negate bits.or bits.rsh bits.xor
    ceil concat contains count
    crypto.hmac.equal crypto.hmac.md5 crypto.hmac.sha1 crypto.hmac.sha256 crypto.hmac.sha512
    crypto.md5 crypto.sha1 crypto.sha256
    div endswith equal floor format_int glob.match glob.quote_meta graph.reachable graph.reachable_paths gt gte
    hex.decode hex.encode indexof indexof_n internal.member_2 internal.member_3 internal.template_string
    intersection io.jwt.decode
    io.jwt.verify_es256 io.jwt.verify_es384 io.jwt.verify_es512 io.jwt.verify_hs256 io.jwt.verify_hs384
    io.jwt.verify_hs512 io.jwt.verify_ps256 io.jwt.verify_ps384 io.jwt.verify_ps512 io.jwt.verify_rs256
    io.jwt.verify_rs384 io.jwt.verify_rs512
    is_array is_boolean is_null is_number is_object is_set is_string
    json.filter json.is_valid json.marshal json.marshal_with_options json.patch json.remove json.unmarshal
    lower lt lte max min minus mul neq numbers.range numbers.range_step
    object.filter object.get object.keys object.remove object.subset object.union object.union_n or plus product
    regex.find_all_string_submatch_n regex.find_n regex.globs_match regex.is_valid regex.match regex.replace
    regex.split regex.template_match rem replace round
    semver.compare semver.is_valid sort split sprintf startswith
    strings.any_prefix_match strings.any_suffix_match strings.count strings.replace_n strings.reverse
    substring sum
    time.add_date time.clock time.date time.diff time.format time.parse_duration_ns time.parse_ns
    time.parse_rfc3339_ns time.weekday
    to_number trim trim_left trim_prefix trim_right trim_space trim_suffix type_name union
    units.parse units.parse_bytes upper
    urlquery.decode urlquery.decode_object urlquery.encode urlquery.encode_object uuid.parse walk
    yaml.is_valid yaml.marshal yaml.unmarshal
    """.split()  # noqa: SIM905 (a list a reader can scan)
)

# Built-ins the compiler renames: report them as the author wrote them.
WRITTEN_AS = {"internal.print": "print"}
MAX_RESULT_BYTES = 4 * 1024 * 1024  # a package document larger than this is refused, not parsed by the parent
CACHE_SIZE = 64


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def builtin_calls(plan: dict) -> list[tuple[str, int | None]]:
    """Every built-in the compiled plan can call, with its 1-based source line (None when the plan has none).

    The plan's ``static.builtin_funcs`` lists the built-ins the compiler declared; ``CallStmt``s name
    every call, including a built-in put in another's place with ``with``. A ``CallStmt`` whose
    function is not one of the plan's own ``funcs`` is a built-in.
    """
    own = {f.get("name") for f in plan.get("funcs", {}).get("funcs", []) or []}
    found: dict[str, int | None] = {}

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "CallStmt" and isinstance(node.get("stmt"), dict):
                stmt = node["stmt"]
                name = stmt.get("func")
                if isinstance(name, str) and name not in own:
                    row = stmt.get("row")
                    line = row + 1 if isinstance(row, int) else None
                    if name not in found or (found[name] is None and line is not None):
                        found[name] = line
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan.get("plans"))
    walk(plan.get("funcs"))
    for declared in plan.get("static", {}).get("builtin_funcs", []) or []:
        found.setdefault(declared.get("name", ""), None)
    return sorted(found.items(), key=lambda item: (item[1] is None, item[1] or 0, item[0]))


def code_lines(source: str) -> list[str]:
    """``source``'s lines with string literals and comments blanked out (a name in a message or a
    comment is not a call)."""
    out, line, i, n = [], [], 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "\n":
            out.append("".join(line))
            line = []
        elif ch == "#":
            while i + 1 < n and source[i + 1] != "\n":
                i += 1
        elif ch == '"':
            line.append(" ")
            i += 1
            while i < n and source[i] not in '"\n':
                i += 2 if source[i] == "\\" else 1
            line.append(" ")
        elif ch == "`":
            line.append(" ")
            i += 1
            while i < n and source[i] != "`":
                if source[i] == "\n":  # a raw string may span lines
                    out.append("".join(line))
                    line = []
                i += 1
            line.append(" ")
        else:
            line.append(ch)
        i += 1
    out.append("".join(line))
    return out


def written_line(source: str, name: str) -> int | None:
    """The first line where ``name`` is written as a name in ``source`` (None if nowhere)."""
    pattern = re.compile(r"(?<![\w.])" + re.escape(name) + r"(?![\w])")
    for number, text in enumerate(code_lines(source), start=1):
        if pattern.search(text):
            return number
    return None


class Refused(Exception):
    def __init__(self, answer: dict) -> None:
        super().__init__(answer.get("error"))
        self.answer = answer


class Evaluator:
    """Compiled modules by (sha256, package), each checked against the allow-list before use."""

    def __init__(self, regopy, workdir: str) -> None:
        self.regopy = regopy
        self.workdir = workdir
        self.cache: dict = {}

    def compiled(self, source: str, sha256: str, package: str):
        key = (sha256, package)
        entry = self.cache.get(key)
        if entry is None:
            regopy = self.regopy
            interpreter = regopy.Interpreter()
            interpreter.log_level = regopy.LogLevel.NONE
            try:
                interpreter.add_module(f"{sha256[:12]}.rego", source)
                bundle = interpreter.build(f"x = data.{package}", [])
            except regopy.RegoError as exc:
                raise Refused({"error": "syntax", "text": str(exc)})
            if not bundle.ok():
                raise Refused({"error": "syntax", "text": "the module does not compile"})
            forbidden = []
            for name, line in self.calls(interpreter, bundle):
                if name not in ALLOWED_BUILTINS:
                    written = WRITTEN_AS.get(name, name)
                    # where the author wrote it (a `with` replacement runs inside the replaced call's
                    # function), else where the compiler placed the call
                    forbidden.append({"name": written, "line": written_line(source, written) or line})
            if len(self.cache) >= CACHE_SIZE:
                self.cache.pop(next(iter(self.cache)))
            entry = self.cache[key] = (interpreter, bundle, forbidden)
        if entry[2]:
            raise Refused({"error": "forbidden", "builtins": entry[2]})
        return entry[0], entry[1]

    def calls(self, interpreter, bundle) -> list[tuple[str, int | None]]:
        folder = tempfile.mkdtemp(dir=self.workdir)
        try:
            interpreter.save_bundle(folder, bundle)
            with open(os.path.join(folder, "plan.json"), encoding="utf-8") as f:
                plan = json.load(f)
        finally:
            for name in os.listdir(folder):
                os.unlink(os.path.join(folder, name))
            os.rmdir(folder)
        return builtin_calls(plan)

    def evaluate(self, source: str, sha256: str, package: str, document: str) -> dict:
        interpreter, bundle = self.compiled(source, sha256, package)
        try:
            interpreter.set_input_term(document)
            output = interpreter.query_bundle(bundle)
        except self.regopy.RegoError as exc:
            return {"error": "evaluation", "message": str(exc).strip()[:300]}
        except ValueError:  # rego-cpp answered with something that is not JSON
            message = "the engine gave no readable result (for example, a rule or function that calls itself)"
            return {"error": "evaluation", "message": message}
        if not output.ok():
            return {"error": "evaluation", "message": str(output).strip()[:300]}
        if not output.results or not output.results[0].bindings:
            return {"ok": True, "result": None}
        return {"ok": True, "result": output.results[0].bindings.get("x")}


def read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes | None:
    head = read_exactly(fd, 4)
    if head is None:
        return None
    return read_exactly(fd, struct.unpack(">I", head)[0])


def write_frame(fd: int, body: bytes) -> None:
    data = struct.pack(">I", len(body)) + body
    while data:
        data = data[os.write(fd, data) :]


def main() -> int:
    memory_mb, cpu_seconds = int(sys.argv[1]), int(sys.argv[2])
    requests, answers = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    import regopy  # after the redirection: nothing rego-cpp prints reaches the parent's pipes

    regopy.set_default_log_level("None")
    workdir = tempfile.mkdtemp(prefix="assay-rego-")
    evaluator = Evaluator(regopy, workdir)
    evaluator.regopy.Interpreter()  # load the library fully before measuring the baseline
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    limit = address_space() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    # the parent starts counting a request's time from here, and removes the folder if it must kill us
    write_frame(answers, json.dumps({"ready": True, "workdir": workdir, "rss_kb": rss_kb()}).encode())
    try:
        return serve(evaluator, requests, answers, cpu_seconds, cpu_hard)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def serve(evaluator: Evaluator, requests: int, answers: int, cpu_seconds: int, cpu_hard: int) -> int:
    """Answer requests until the parent closes the pipe (0) or memory ran out (3)."""
    while True:
        header = read_frame(requests)
        payload = read_frame(requests)
        if header is None or payload is None:
            return 0  # the parent closed the pipe: it is gone or retired this process
        request = json.loads(header)
        document = payload.decode("utf-8")
        for pack in request["packs"]:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            soft = int(usage.ru_utime + usage.ru_stime) + cpu_seconds + 1
            if cpu_hard == resource.RLIM_INFINITY or soft <= cpu_hard:
                resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))
            try:
                args = (pack["source"], pack["sha256"], pack["package"])
                if request["op"] == "check":
                    evaluator.compiled(*args)
                    answer = {"ok": True}
                else:
                    answer = evaluator.evaluate(*args, document)
                body = json.dumps(answer, separators=(",", ":")).encode("utf-8")
                if len(body) > MAX_RESULT_BYTES:
                    body = json.dumps({"error": "too_large", "limit": MAX_RESULT_BYTES}).encode()
            except Refused as exc:
                body = json.dumps(exc.answer).encode("utf-8")
            except (RecursionError, ValueError, TypeError) as exc:  # e.g. a document nested too deep to encode
                message = f"the engine's answer could not be read ({type(exc).__name__})"
                body = json.dumps({"error": "evaluation", "message": message}).encode("utf-8")
            except MemoryError:
                write_frame(answers, json.dumps({"error": "memory", "rss_kb": rss_kb()}).encode())
                return 3  # the heap may be in any state: let the parent start a fresh process
            body = body[:-1] + b',"rss_kb":' + str(rss_kb()).encode() + b"}"
            write_frame(answers, body)  # at once: the parent times each pack from the previous answer


if __name__ == "__main__":
    sys.exit(main())
