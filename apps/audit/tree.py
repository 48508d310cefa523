"""The Merkle tree over the sealed chain, kept in the database so that proofs cost O(log n) reads.

The sealer stores, in the transaction that seals the events, the hash of every complete
aligned subtree of ``BLOCK`` (16) leaves or more (``audit_tree_node``: level, index, hash;
the node at level L, index i covers leaves ``[i * 2**L, (i + 1) * 2**L)``). Below level 4 a
subtree's hash is computed from the seals' chain hashes (at most 16 rows, one range read).
So a proof over a trail of a million events reads about 20 stored nodes and 16 seals,
and the sealer writes one node per 8 events on average.

Stored nodes are an acceleration, not a source of truth: a node that is not stored is
computed from the level below, and a node someone altered makes every proof through it
fail against the signed checkpoint, which an auditor checks (``scripts/verify_pack.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from . import merkle

STORED_LEVEL = 4
BLOCK = 1 << STORED_LEVEL
_CHUNK = 500  # ids per IN list


def extend(cursor, head: int) -> int:
    """Store the nodes that the first ``head`` sealed events complete and that are not stored yet.

    Called by the sealer inside its transaction (and by the migration that adds the tree to an
    existing trail); reads the seals of the blocks it completes and at most one stored sibling
    per level. Returns the number of nodes written.
    """
    cursor.execute("SELECT max(idx) FROM audit_tree_node WHERE level = %s", [STORED_LEVEL])
    done = cursor.fetchone()[0]
    first, last = (0 if done is None else int(done) + 1), head // BLOCK
    if first >= last:
        return 0
    cursor.execute(
        "SELECT hash FROM audit_seal WHERE seq > %s AND seq <= %s ORDER BY seq", [first * BLOCK, last * BLOCK]
    )
    hashes = [bytes.fromhex(h) for (h,) in cursor.fetchall()]
    if len(hashes) != (last - first) * BLOCK:
        raise RuntimeError(f"the seals of events {first * BLOCK + 1}..{last * BLOCK} are not all there")
    new: dict[tuple[int, int], bytes] = {}
    for b in range(first, last):
        part = hashes[(b - first) * BLOCK : (b - first + 1) * BLOCK]
        new[(STORED_LEVEL, b)] = merkle.root_of([merkle.leaf_hash(h) for h in part])
    level, indexes = STORED_LEVEL, list(range(first, last))
    while True:
        parents = [i >> 1 for i in indexes if i & 1]
        if not parents:
            break
        for p in parents:
            left = new.get((level, 2 * p))
            if left is None:  # completed earlier: stored
                cursor.execute("SELECT hash FROM audit_tree_node WHERE level = %s AND idx = %s", [level, 2 * p])
                row = cursor.fetchone()
                left = bytes.fromhex(row[0]) if row else _computed(cursor, level, 2 * p)
            new[(level + 1, p)] = merkle.node_hash(left, new[(level, 2 * p + 1)])
        level, indexes = level + 1, parents
    rows = [(lv, i, h.hex()) for (lv, i), h in sorted(new.items())]
    cursor.executemany("INSERT INTO audit_tree_node (level, idx, hash) VALUES (%s, %s, %s)", rows)
    return len(rows)


def _computed(cursor, level: int, index: int) -> bytes:
    """A complete subtree's hash from the seals (for a node that should have been stored and is not)."""
    size = 1 << level
    cursor.execute(
        "SELECT hash FROM audit_seal WHERE seq > %s AND seq <= %s ORDER BY seq", [index * size, (index + 1) * size]
    )
    return merkle.root_of([merkle.leaf_hash(bytes.fromhex(h)) for (h,) in cursor.fetchall()])


def sealed_size() -> int:
    """The number of sealed events: the size of the largest tree there is."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(seq) FROM audit_seal")
        return int(cursor.fetchone()[0] or 0)


def _pieces(start: int, size: int) -> Iterable[tuple[int, int]]:
    """A range split into the aligned complete subtrees (level, index) that RFC 9162 hashes it from."""
    if size & (size - 1) == 0 and start % size == 0:
        yield size.bit_length() - 1, start // size
        return
    k = merkle.split(size)
    yield from _pieces(start, k)
    yield from _pieces(start + k, size - k)


class TreeReader:
    """Subtree hashes of the tree of the first ``size`` sealed events, read in as few queries as it can.

    ``prefetch`` takes every range a set of proofs needs and reads their stored nodes in one query
    per level and their seals in merged ranges; ``subtree`` then computes from what was read (and
    reads one by one only what prefetch did not foresee).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._nodes: dict[tuple[int, int], bytes | None] = {}
        self._leaves: dict[int, bytes] = {}

    # reads ------------------------------------------------------------------------------------

    def prefetch(self, ranges: Iterable[tuple[int, int]]) -> None:
        wanted: dict[int, set[int]] = {}
        blocks: set[int] = set()
        for start, n in ranges:
            for level, index in _pieces(start, n):
                if level >= STORED_LEVEL:
                    if (level, index) not in self._nodes:
                        wanted.setdefault(level, set()).add(index)
                else:
                    blocks.add((index << level) // BLOCK)
        with connection.cursor() as cursor:
            for level, indexes in wanted.items():
                ordered = sorted(indexes)
                for i in range(0, len(ordered), _CHUNK):
                    chunk = ordered[i : i + _CHUNK]
                    for index in chunk:
                        self._nodes[(level, index)] = None
                    marks = ", ".join(["%s"] * len(chunk))
                    cursor.execute(
                        f"SELECT idx, hash FROM audit_tree_node WHERE level = %s AND idx IN ({marks})", [level, *chunk]
                    )
                    for index, digest in cursor.fetchall():
                        self._nodes[(level, int(index))] = bytes.fromhex(digest)
            self._read_blocks(cursor, sorted(b for b in blocks if b * BLOCK not in self._leaves))

    def _read_blocks(self, cursor, blocks: list[int]) -> None:
        spans: list[list[int]] = []
        for b in blocks:
            if spans and spans[-1][1] == b:
                spans[-1][1] = b + 1
            else:
                spans.append([b, b + 1])
        for i in range(0, len(spans), 200):  # one query per 200 runs of blocks
            group = spans[i : i + 200]
            where = " OR ".join(["(seq > %s AND seq <= %s)"] * len(group))
            params = [v for a, b in group for v in (a * BLOCK, min(b * BLOCK, self.size))]
            cursor.execute(f"SELECT seq, hash FROM audit_seal WHERE {where}", params)
            for seq, digest in cursor.fetchall():
                self._leaves[int(seq) - 1] = merkle.leaf_hash(bytes.fromhex(digest))

    def _leaf(self, index: int) -> bytes:
        if index not in self._leaves:
            with connection.cursor() as cursor:
                self._read_blocks(cursor, [index // BLOCK])
        try:
            return self._leaves[index]
        except KeyError:
            raise merkle.ProofError(f"event {index + 1} is not sealed") from None

    def _node(self, level: int, index: int) -> bytes:
        if level == 0:
            return self._leaf(index)
        if level >= STORED_LEVEL:
            if (level, index) not in self._nodes:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT hash FROM audit_tree_node WHERE level = %s AND idx = %s", [level, index])
                    row = cursor.fetchone()
                self._nodes[(level, index)] = bytes.fromhex(row[0]) if row else None
            stored = self._nodes[(level, index)]
            if stored is not None:
                return stored
        return merkle.node_hash(self._node(level - 1, 2 * index), self._node(level - 1, 2 * index + 1))

    def subtree(self, start: int, n: int) -> bytes:
        if start < 0 or n <= 0 or start + n > self.size:
            raise merkle.ProofError(f"leaves {start}..{start + n - 1} are outside the tree of {self.size}")
        if n & (n - 1) == 0 and start % n == 0:
            return self._node(n.bit_length() - 1, start // n)
        k = merkle.split(n)
        return merkle.node_hash(self.subtree(start, k), self.subtree(start + k, n - k))

    # proofs -----------------------------------------------------------------------------------

    def root(self) -> bytes:
        if self.size == 0:
            return merkle.root_of([])
        self.prefetch([(0, self.size)])
        return self.subtree(0, self.size)

    def inclusion(self, seqs: Iterable[int]) -> dict[int, list[bytes]]:
        """Inclusion proofs for events (by sequence number) in this tree, read together."""
        seqs = sorted(set(seqs))
        plans = {seq: merkle.inclusion_ranges(seq - 1, self.size) for seq in seqs}
        self.prefetch(r for plan in plans.values() for r in plan)
        return {seq: [self.subtree(start, n) for start, n in plan] for seq, plan in plans.items()}

    def consistency(self, old: int) -> list[bytes]:
        """The consistency proof from the tree of ``old`` events to this one."""
        plan = merkle.consistency_ranges(old, self.size)
        self.prefetch(plan)
        return [self.subtree(start, n) for start, n in plan]
