"""The router's state: each service's members, weights and fence; the choice of member; the saved file.

Pure Python, no I/O but the state file. A service's configuration is what the local driver sends for a plan:

    {"fence": 7, "model": "credit", "members": [
        {"version_id": "...", "version": "3", "digest": "<sha256>", "port": 18001, "weight": 90, "shadow": false},
        ...]}

Live traffic goes to the members that are not shadows by **smooth weighted round-robin** (nginx's): each pick
adds every member's weight to its running score, takes the highest score (the first on a tie) and subtracts
the total from it. It is deterministic: over any run of ``sum(weights)`` picks each member gets exactly its
weight, interleaved (90/10 gives 9 then 1 in every 10), so 1,000 requests split 900/100 exactly.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from worker.serving.metrics import Histogram

SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?$")
STATE_FORMAT = 1


class ConfigRefused(ValueError):
    """A configuration the router will not take (wrong shape); the message says what is wrong."""


class StaleConfig(Exception):
    """A configuration (or removal) under a lower fence than the one the router holds."""

    def __init__(self, service: str, fence: int, held: int) -> None:
        super().__init__(f"service {service!r} holds fence {held}; a change under fence {fence} is stale")
        self.held = held


@dataclass
class MemberStats:
    """What the router saw of one member since it started (counters reset when the router restarts)."""

    routed: int = 0  # live requests sent to it
    mirrored: int = 0  # shadow copies sent to it
    errors: int = 0  # answers that were not 200, or no answer at all
    unanswered: int = 0  # of those, requests it never answered (refused, reset, timed out: the router's 502)
    compared: int = 0  # shadow only: answers compared with the live answer
    disagreed: int = 0  # shadow only: answers that differed from the live one (or failed where it did not)
    latency: Histogram = field(default_factory=Histogram)


@dataclass
class RouteMember:
    version_id: str
    version: str
    digest: str
    port: int
    weight: int
    shadow: bool
    stats: MemberStats = field(default_factory=MemberStats)

    def as_config(self) -> dict:
        return {
            "version_id": self.version_id,
            "version": self.version,
            "digest": self.digest,
            "port": self.port,
            "weight": self.weight,
            "shadow": self.shadow,
        }


class SmoothWeighted:
    """Smooth weighted round-robin over fixed weights; ``pick`` returns an index (members of weight 0 never)."""

    def __init__(self, weights: list[int]) -> None:
        self.weights = weights
        self.total = sum(w for w in weights if w > 0)
        self.current = [0] * len(weights)

    def pick(self) -> int | None:
        if self.total <= 0:
            return None
        best = -1
        for i, weight in enumerate(self.weights):
            if weight <= 0:
                continue
            self.current[i] += weight
            if best < 0 or self.current[i] > self.current[best]:
                best = i
        self.current[best] -= self.total
        return best


@dataclass
class Service:
    name: str
    fence: int
    model: str = ""
    members: list[RouteMember] = field(default_factory=list)
    removed: bool = False

    def __post_init__(self) -> None:
        self.live = [m for m in self.members if not m.shadow]
        self.shadows = [m for m in self.members if m.shadow]
        self.chooser = SmoothWeighted([m.weight for m in self.live])

    def pick(self) -> RouteMember | None:
        index = self.chooser.pick()
        return self.live[index] if index is not None else None

    def by_version(self, version: str) -> RouteMember | None:
        return next((m for m in self.members if m.version == version), None)

    def as_config(self) -> dict:
        return {
            "fence": self.fence,
            "model": self.model,
            "removed": self.removed,
            "members": [m.as_config() for m in self.members],
        }


def _member(raw: object, index: int) -> RouteMember:
    if not isinstance(raw, dict):
        raise ConfigRefused(f"members[{index}] must be an object")
    try:
        member = RouteMember(
            version_id=str(raw["version_id"]),
            version=str(raw["version"]),
            digest=str(raw["digest"]),
            port=int(raw["port"]),
            weight=int(raw.get("weight", 0)),
            shadow=bool(raw.get("shadow", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigRefused(f"members[{index}] needs version_id, version, digest, port, weight: {exc}") from None
    if not 0 < member.port < 65536 or not 0 <= member.weight <= 100:
        raise ConfigRefused(f"members[{index}]: port must be 1-65535 and weight 0-100")
    return member


def service_from_config(name: str, doc: object) -> Service:
    """A ``Service`` from an admin request's body; ``ConfigRefused`` when its shape is wrong."""
    if not SERVICE_NAME.match(name):
        raise ConfigRefused(f"service name {name!r} is not a DNS label")
    if not isinstance(doc, dict) or not isinstance(doc.get("fence"), int) or isinstance(doc.get("fence"), bool):
        raise ConfigRefused('the body must be {"fence": <integer>, "model": "...", "members": [...]}')
    raw_members = doc.get("members", [])
    if not isinstance(raw_members, list):
        raise ConfigRefused('"members" must be a list')
    members = [_member(m, i) for i, m in enumerate(raw_members)]
    if len({m.version_id for m in members}) != len(members):
        raise ConfigRefused("a version may appear only once in a service")
    live = [m for m in members if not m.shadow]
    if live and sum(m.weight for m in live) != 100:
        raise ConfigRefused("the weights of the live members must add up to 100")
    return Service(
        name=name,
        fence=doc["fence"],
        model=str(doc.get("model", "")),
        members=members,
        removed=bool(doc.get("removed", False)),
    )


class Table:
    """Every service of one router, saved to ``path`` after each accepted change (write, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.services: dict[str, Service] = {}

    def load(self) -> None:
        if not self.path.is_file():
            return
        doc = json.loads(self.path.read_text())
        for name, config in doc.get("services", {}).items():
            self.services[name] = service_from_config(name, config)

    def save(self) -> None:
        doc = {"format": STATE_FORMAT, "services": {n: s.as_config() for n, s in sorted(self.services.items())}}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _check_fence(self, name: str, fence: int) -> Service | None:
        held = self.services.get(name)
        if held is not None and fence < held.fence:
            raise StaleConfig(name, fence, held.fence)
        return held

    def put(self, service: Service) -> Service:
        """Take a service's configuration unless its fence is stale; members that stay keep their counters."""
        held = self._check_fence(service.name, service.fence)
        if held is not None:
            before = {(m.version_id, m.port): m.stats for m in held.members}
            for member in service.members:
                member.stats = before.get((member.version_id, member.port), member.stats)
        self.services[service.name] = service
        self.save()
        return service

    def remove(self, name: str, fence: int) -> None:
        """Forget a service's members; its fence stays (a tombstone), so a stale plan is still refused later."""
        held = self._check_fence(name, fence)
        model = held.model if held is not None else ""
        self.services[name] = Service(name=name, fence=fence, model=model, removed=True)
        self.save()
