"""The Merkle tree over the sealed chain: RFC 9162 hashing and proofs, stored nodes, and what tampering does.

An auditor holding a signed tree head relies on two things: an event's inclusion proof leads
to that head's root only if the event is the one the log holds at that place, and a
consistency proof between two heads exists only if the later log extends the earlier one.
"""

from __future__ import annotations

import hashlib
import importlib
from types import SimpleNamespace

import pytest
from django.db import connection, transaction

from apps.audit import merkle, tree
from apps.audit.chain import seal_pending
from apps.audit.models import AuditSeal, AuditTreeNode
from tests.support.db import bypass_audit_triggers

# RFC 6962's reference leaves and the roots of their first n, from the Certificate Transparency
# implementations' test vectors (certificate-transparency-go, merkletree tests).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


# RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 written out literally, as the reference.
def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return merkle.leaf_hash(d[0])
    k = merkle.split(len(d))
    return merkle.node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = merkle.split(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = merkle.split(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def data(n: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(n)]


def memory_subtree(d: list[bytes]):
    return lambda start, n: mth(d[start : start + n])


def test_roots_match_the_certificate_transparency_test_vectors():
    for n, expected in enumerate(CT_ROOTS, start=1):
        assert mth(CT_LEAVES[:n]).hex() == expected
        assert merkle.root_of([merkle.leaf_hash(x) for x in CT_LEAVES[:n]]).hex() == expected


def test_proofs_equal_the_rfc_definitions_and_verify_for_every_small_tree():
    d = data(40)
    for n in range(1, 41):
        root = mth(d[:n])
        sub = memory_subtree(d[:n])
        for m in range(n):
            proof = merkle.inclusion_proof(m, n, sub)
            assert proof == path(m, d[:n])
            merkle.verify_inclusion(m, n, merkle.leaf_hash(d[m]), proof, root)
        for old in range(1, n + 1):
            proof = merkle.consistency_proof(old, n, sub)
            assert proof == subproof(old, d[:n], True)
            merkle.verify_consistency(old, n, mth(d[:old]), root, proof)


def test_a_changed_leaf_proof_element_or_size_is_rejected():
    d = data(21)
    root, sub = mth(d), memory_subtree(d)
    proof = merkle.inclusion_proof(5, 21, sub)
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(5, 21, merkle.leaf_hash(b"another event"), proof, root)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = hashlib.sha256(bad[i]).digest()
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(5, 21, merkle.leaf_hash(d[5]), bad, root)
    with pytest.raises(merkle.ProofError):  # the same event claimed at another place
        merkle.verify_inclusion(6, 21, merkle.leaf_hash(d[5]), proof, root)
    with pytest.raises(merkle.ProofError):  # a proof cut short
        merkle.verify_inclusion(5, 21, merkle.leaf_hash(d[5]), proof[:-1], root)

    old_root = mth(d[:13])
    cons = merkle.consistency_proof(13, 21, sub)
    rewritten = list(d[:13])
    rewritten[3] = b"rewritten"
    with pytest.raises(merkle.ProofError, match="old root"):
        merkle.verify_consistency(13, 21, mth(rewritten), root, cons)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(13, 21, old_root, mth(d[:20] + [b"x"]), cons)
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(12, 21, old_root, root, cons)


# ------------------------------------------------------------------------------------------------
# The tree kept in the database


def _chain_leaves() -> list[bytes]:
    return [bytes.fromhex(h) for h in AuditSeal.objects.order_by("seq").values_list("hash", flat=True)]


def test_the_sealer_stores_the_complete_subtrees_and_proofs_come_from_them(write_events):
    write_events(75)
    d = _chain_leaves()
    assert len(d) >= 75
    n = len(d)
    stored = {(node.level, node.idx): node.hash for node in AuditTreeNode.objects.all()}
    # every complete aligned subtree of 16 events or more is stored, with the RFC hash
    for level in range(tree.STORED_LEVEL, n.bit_length()):
        size = 1 << level
        for idx in range(n // size):
            assert stored.pop((level, idx)) == mth(d[idx * size : (idx + 1) * size]).hex()
    assert stored == {}

    reader = tree.TreeReader(n)
    root = reader.root()
    assert root == mth(d)
    proofs = tree.TreeReader(n).inclusion(range(1, n + 1))
    for seq, proof in proofs.items():
        merkle.verify_inclusion(seq - 1, n, merkle.leaf_hash(d[seq - 1]), proof, root)
    for old in (1, 15, 16, 17, 33, 64, n - 1, n):
        merkle.verify_consistency(old, n, mth(d[:old]), root, tree.TreeReader(n).consistency(old))


def test_a_proof_over_a_long_trail_reads_a_handful_of_rows(write_events, django_assert_max_num_queries):
    write_events(130)
    n = len(_chain_leaves())
    with django_assert_max_num_queries(4):  # stored nodes per level, at most one for the seals
        proofs = tree.TreeReader(n).inclusion([7])
    assert len(proofs[7]) == (n - 1).bit_length()


def test_seals_written_in_small_batches_give_the_same_tree(db):
    from apps.audit import services as audit
    from apps.core.principals import Principal

    actor = Principal(kind="user", id=1, name="dana")
    for i in range(50):
        with transaction.atomic():
            audit.record(action="model.updated", actor=actor, target=("model", str(i), "m"), after={"i": i})
        if i % 7 == 6:  # blocks complete across many sealer transactions of uneven sizes
            seal_pending(blocking=True, batch=3)
    seal_pending(blocking=True, batch=5)
    d = _chain_leaves()
    assert tree.TreeReader(len(d)).root() == mth(d)
    assert AuditTreeNode.objects.filter(level=tree.STORED_LEVEL).count() == len(d) // tree.BLOCK


def test_nodes_missing_from_the_store_are_computed_and_an_altered_node_fails_the_proof(write_events):
    write_events(40)
    d = _chain_leaves()
    n = len(d)
    true_root = mth(d)
    with bypass_audit_triggers(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_tree_node WHERE level = %s", [tree.STORED_LEVEL + 1])
    assert tree.TreeReader(n).root() == true_root  # a missing node is computed from the level below

    with bypass_audit_triggers(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_tree_node SET hash = %s WHERE level = %s AND idx = 0", ["00" * 32, tree.STORED_LEVEL]
        )
    proof = tree.TreeReader(n).inclusion([n])[n]  # its path passes the altered node
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(n - 1, n, merkle.leaf_hash(d[-1]), proof, true_root)


@pytest.mark.parametrize("statement", ["UPDATE audit_tree_node SET hash = 'x'", "DELETE FROM audit_tree_node"])
def test_stored_nodes_cannot_be_changed_or_removed(write_events, statement):
    write_events(20)
    assert AuditTreeNode.objects.exists()
    with (
        pytest.raises(Exception, match="audit_tree_node is append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)


def test_a_trail_from_before_the_tree_gets_its_nodes_from_the_migrations_backfill(write_events):
    write_events(70)
    d = _chain_leaves()
    before = set(AuditTreeNode.objects.values_list("level", "idx", "hash"))
    with bypass_audit_triggers(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_tree_node")  # as a trail sealed before the tree existed
    migration = importlib.import_module("apps.audit.migrations.0006_tree_node")
    migration._backfill(None, SimpleNamespace(connection=connection))  # it uses the schema editor's connection
    assert set(AuditTreeNode.objects.values_list("level", "idx", "hash")) == before
    assert tree.TreeReader(len(d)).root() == mth(d)
