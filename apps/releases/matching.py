"""Who fills which required approval: a maximum bipartite matching of approvers to slots.

The decision asks for roles and counts (one ``reviewer`` and one ``compliance_officer``, say);
each approval carries the roles its approver held on the release. A person fills one slot at
most. A greedy first-come assignment can waste a compliance officer on the reviewer slot and
then refuse a reviewer; the matching (augmenting paths, Kuhn's algorithm) finds an assignment
that fills every slot whenever one exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Which approver roles may fill a slot of a given role. A compliance officer (and an admin) may
# stand in for a reviewer; nobody stands in for a compliance officer.
_STAND_INS: dict[str, frozenset[str]] = {
    "reviewer": frozenset({"reviewer", "compliance_officer", "admin"}),
}


def fills(slot_role: str, approver_roles: Iterable[str]) -> bool:
    accepted = _STAND_INS.get(slot_role, frozenset({slot_role}))
    return any(role in accepted for role in approver_roles)


@dataclass(frozen=True)
class Slot:
    role: str
    index: int  # 1..count within the role


@dataclass(frozen=True)
class Matching:
    slots: tuple[Slot, ...]
    assigned: dict  # slot -> approver key

    @property
    def complete(self) -> bool:
        return len(self.assigned) == len(self.slots)

    def slot_of(self, approver) -> Slot | None:
        for slot, key in self.assigned.items():
            if key == approver:
                return slot
        return None


def slots_for(required: Sequence[tuple[str, int]]) -> tuple[Slot, ...]:
    return tuple(Slot(role, i + 1) for role, count in required for i in range(count))


def match(required: Sequence[tuple[str, int]], approvers: Sequence[tuple[object, Iterable[str]]]) -> Matching:
    """Assign approvers (``(key, roles)``, in the order they approved) to the slots ``required`` asks for."""
    slots = slots_for(required)
    roles = {key: frozenset(r) for key, r in approvers}
    owner: dict[int, object] = {}  # slot index -> approver key

    def augment(key, seen: set[int]) -> bool:
        for i, slot in enumerate(slots):
            if i in seen or not fills(slot.role, roles[key]):
                continue
            seen.add(i)
            if i not in owner or augment(owner[i], seen):
                owner[i] = key
                return True
        return False

    for key, _ in approvers:
        augment(key, set())
    return Matching(slots=slots, assigned={slots[i]: key for i, key in sorted(owner.items())})
