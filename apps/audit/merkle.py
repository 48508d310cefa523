"""The Merkle tree over the sealed chain: RFC 9162 hashing, proofs, and their verification.

Leaf ``i`` (0-based) is the event with sequence number ``i + 1``; its leaf data is the
event's chain hash as 32 raw bytes (the hash already commits to the event's canonical
serialisation, its sequence number and the hash before it). Hashing is RFC 9162 §2.1.1
(the same as RFC 6962): ``leaf = SHA-256(0x00 || data)``, ``node = SHA-256(0x01 || left || right)``;
a tree of ``n`` leaves splits at the largest power of two below ``n``.

This module is pure: it computes over a function ``subtree(start, size)`` that returns the
hash of leaves ``[start, start + size)`` and knows nothing of the database
(``apps.audit.tree`` supplies one). The verification functions are RFC 9162 §2.1.3.2 and
§2.1.4.2 as written; ``scripts/verify_pack.py`` holds its own copy (the offline verifier
imports nothing from Assay) and ``tests/reports/test_pack.py`` holds the two to each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

Subtree = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not verify, or a request for one that cannot exist (a size beyond the tree)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: list[bytes]) -> bytes:
    """MTH of a list of leaf hashes, bottom up (for trees held in memory)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        # Pairing left to right and carrying an odd last node up gives RFC 9162's split tree.
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees (start, size) whose hashes form PATH(index, D[size]), in proof order."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    out: list[tuple[int, int]] = []
    start, n, m = 0, size, index
    while n > 1:
        k = split(n)
        if m < k:
            out.append((start + k, n - k))
            n = k
        else:
            out.append((start, k))
            start, m, n = start + k, m - k, n - k
    out.reverse()  # PATH lists the deepest sibling first
    return out


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The subtrees (start, size) whose hashes form PROOF(old, D[new]), in proof order."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from a tree of {old} to one of {new}")
    out: list[tuple[int, int]] = []
    start, m, n, complete = 0, old, new, True
    while m != n:
        k = split(n)
        if m <= k:
            out.append((start + k, n - k))
            n = k
        else:
            out.append((start, k))
            start, m, n, complete = start + k, m - k, n - k, False
    if not complete:
        out.append((start, n))
    out.reverse()  # SUBPROOF lists its innermost part first
    return out


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    return [subtree(start, n) for start, n in inclusion_ranges(index, size)]


def consistency_proof(old: int, new: int, subtree: Subtree) -> list[bytes]:
    return [subtree(start, n) for start, n in consistency_ranges(old, new)]


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Iterable[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root that ``proof`` and ``leaf`` imply; ProofError when malformed."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Iterable[bytes], root: bytes) -> None:
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"leaf {index} is not in the tree of {size} with that root")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> None:
    """RFC 9162 §2.1.4.2: raise ProofError unless the tree of ``new`` extends the tree of ``old``."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from a tree of {old} to one of {new}")
    if old == new:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("the two roots differ for the same size")
        return
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node of the path
        path.insert(0, old_root)
    if not path:
        raise ProofError("the consistency proof is empty")
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than it can be")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than it must be")
    if fr != old_root:
        raise ProofError(f"the proof does not lead to the old root (the first {old} events changed)")
    if sr != new_root:
        raise ProofError(f"the proof does not lead to the new root of {new} events")
