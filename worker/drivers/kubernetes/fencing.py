"""Fenced, optimistic writes: the only way the driver changes an object.

Each object carries the fencing token it was written under (annotation ``assay.dev/fence``). A write first
reads the object; if its token is higher than the plan's, the write is refused (``StaleFence``): a worker
that lost its lease can never undo what its successor applied. The write then goes back with the
``resourceVersion`` it read, so a client that wrote in between makes the API server answer 409
(``ConcurrentWrite``) instead of one update silently losing the other. Deletes carry the same precondition.
On a 409 the driver reads the object again, checks the fence again and retries (a few times, as client-go's
``RetryOnConflict`` does): a controller writing the object's status in between is not an error, while a writer
under a newer token now makes the retry fail with ``StaleFence``. Nothing is ever written over a version that
was not read and judged first.

A write whose labels, annotations and spec are already on the object is skipped, so applying the same plan
twice changes nothing (not even a resourceVersion).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from apps.deployments.plans import StaleFence

from .naming import ANNOTATION_FENCE
from .objects import ConcurrentWrite, Kind, ObjectStore

ATTEMPTS = 4

# Fields the driver renders and a write replaces; everything else on a live object (status, fields the
# server or a controller set) is kept as the server has it.
_OWNED_TOP_LEVEL = ("spec", "data")


def fence_of(obj: dict | None) -> int | None:
    """The token an object was written under (None if it carries none or a malformed one)."""
    if not obj:
        return None
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_FENCE)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def check_fence(obj: dict | None, fence: int, kind: str) -> None:
    held = fence_of(obj)
    if held is not None and held > fence:
        name = obj["metadata"]["name"]
        raise StaleFence(f"{kind} {name} was applied under fencing token {held}; this plan carries {fence}")


def contains(want, have) -> bool:
    """Whether ``have`` already holds everything in ``want`` (extra keys on ``have`` are server defaults)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and contains(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(map(contains, want, have))
    return want == have


def up_to_date(current: dict, desired: dict) -> bool:
    meta, want = current.get("metadata") or {}, desired["metadata"]
    return (
        contains(want.get("labels") or {}, meta.get("labels") or {})
        and contains(want.get("annotations") or {}, meta.get("annotations") or {})
        and all(contains(desired[key], current.get(key)) for key in _OWNED_TOP_LEVEL if key in desired)
    )


def put(
    store: ObjectStore,
    kind: Kind,
    desired: dict,
    fence: int,
    adjust: Callable[[dict, dict], None] | None = None,
) -> dict:
    """Create ``desired`` or bring the object to it under ``fence``; ``adjust(current, desired)`` may carry
    over what must stay (a Service's cluster IP, replicas an autoscaler owns) before comparing."""
    for attempt in range(ATTEMPTS):
        try:
            return _put_once(store, kind, copy.deepcopy(desired), fence, adjust)
        except ConcurrentWrite:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _put_once(store: ObjectStore, kind: Kind, desired: dict, fence: int, adjust) -> dict:
    current = store.get(kind, desired["metadata"]["name"])
    if current is None:
        return store.create(kind, desired)
    check_fence(current, fence, kind.kind)
    if adjust:
        adjust(current, desired)
    if up_to_date(current, desired):
        return current
    meta = current["metadata"]
    merged = {key: value for key, value in current.items() if key not in ("status", *_OWNED_TOP_LEVEL)}
    merged.update({key: desired[key] for key in _OWNED_TOP_LEVEL if key in desired})
    merged["apiVersion"], merged["kind"] = desired["apiVersion"], desired["kind"]
    merged["metadata"] = {
        **meta,
        "labels": {**(meta.get("labels") or {}), **(desired["metadata"].get("labels") or {})},
        "annotations": {**(meta.get("annotations") or {}), **(desired["metadata"].get("annotations") or {})},
        "resourceVersion": meta["resourceVersion"],
    }
    return store.replace(kind, merged)


def delete(store: ObjectStore, kind: Kind, current: dict, fence: int) -> None:
    """Delete ``current`` (as listed) unless it was written under a newer token; if it changed since it was
    read, read it again and judge again."""
    name = current["metadata"]["name"]
    for attempt in range(ATTEMPTS):
        check_fence(current, fence, kind.kind)
        try:
            store.delete(kind, name, current["metadata"].get("resourceVersion"))
            return
        except ConcurrentWrite:
            if attempt == ATTEMPTS - 1:
                raise
        current = store.get(kind, name)
        if current is None:
            return
