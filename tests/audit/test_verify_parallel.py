"""Verification in worker processes: ranges of the chain walked at once give exactly the one walk's result.

``verify_database(workers=k)`` cuts the chain into k ranges of sequence numbers,
walks them in forked processes on connections of their own, each from the stored
``prev_hash`` of its first row, and checks the joins afterwards. The workers only
see committed rows, so these tests commit (``transaction=True``); ``min_events_per_worker=1``
lets a 30-event trail be cut at all.
"""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from apps.audit import verification

pytestmark = pytest.mark.django_db(transaction=True)

HEAD = 30  # checkpoints at 10 and 20; ranges start after 15 (2 workers), 10 and 20 (3), 7, 15 and 22 (4)
WORKERS = (2, 3, 4)


def _delete(*seqs):
    return lambda attacker: attacker.delete(*seqs)


def _modify(*seqs):
    def tamper(attacker):
        for seq in seqs:
            attacker.modify(seq)

    return tamper


def _rewrite(seq):
    def tamper(attacker):
        attacker.modify(seq)
        attacker.rehash_from(seq)

    return tamper


def _relink(seq):
    # the row and every later one rehashed from a made-up previous hash: each hash agrees with its own
    # row and the rows after it agree with each other, only the link into ``seq`` is broken
    return lambda attacker: attacker.rehash_from(seq, prev="f" * 64)


# (tampering, the first bad seq one walk names, the kind of problem)
SCENARIOS = {
    "intact": (lambda attacker: None, None, None),
    "modified, first row of a range": (_modify(16), 16, "chain"),
    "modified, last row of a range": (_modify(15), 15, "chain"),
    "modified, first row of the middle range": (_modify(11), 11, "chain"),
    "modified in two ranges": (_modify(25, 8), 8, "chain"),
    "deleted, first row of a range": (_delete(16), 16, "chain"),
    "deleted, last row of a range": (_delete(15), 15, "chain"),
    "deleted, a whole range": (_delete(*range(11, 21)), 11, "chain"),
    "deleted, event 1": (_delete(1), 1, "chain"),
    "swapped across a range boundary": (lambda attacker: attacker.swap(15, 16), 15, "chain"),
    "link broken at a range boundary": (_relink(16), 16, "chain"),
    "link broken at the middle range boundary": (_relink(21), 21, "chain"),
    "rewritten and rehashed to the head": (_rewrite(12), 11, "checkpoint_mismatch"),
    "tail cut off before the last checkpoint": (_delete(*range(18, HEAD + 1)), 18, "truncated"),
    "last event deleted, no checkpoint covers it": (_delete(HEAD), None, None),
}


@pytest.fixture
def trail(write_events, checkpoint):
    """30 sealed, committed events with signed checkpoints at 10 and 20."""
    write_events(10)
    checkpoint()
    write_events(10)
    checkpoint()
    write_events(HEAD - 20)


@pytest.mark.parametrize("name", SCENARIOS)
def test_ranges_walked_in_workers_name_what_one_walk_names(name, trail, attacker):
    # given
    tamper, first_bad, kind = SCENARIOS[name]
    tamper(attacker)
    # when
    one_walk = verification.verify_database(workers=1)
    # then: one walk names the expected event...
    assert one_walk.first_bad_seq == first_bad, one_walk.problems
    assert [p.kind for p in one_walk.problems] == ([kind] if kind else [])
    # ...and every cut into ranges gives exactly the same result: message, head, hashes and checkpoint counts
    for workers in WORKERS:
        in_ranges = verification.verify_database(workers=workers, min_events_per_worker=1)
        assert in_ranges.as_dict() == one_walk.as_dict(), workers


def test_the_chain_is_cut_into_one_range_per_worker(trail):
    # when
    segments = verification._walk_database({}, workers=3, min_events_per_worker=1)
    # then: three walks, one after the other, whose joins hold
    assert [(s.first_seq, s.last_seq) for s in segments] == [(1, 10), (11, 20), (21, HEAD)]
    assert segments[1].first_prev == segments[0].last_hash
    assert segments[2].first_prev == segments[1].last_hash
    assert all(s.problem is None for s in segments)


def test_a_small_trail_or_one_inside_a_transaction_is_walked_in_one_pass(trail):
    # a range per worker only from min_events_per_worker events each
    assert len(verification._walk_database({}, workers=4, min_events_per_worker=HEAD)) == 1
    assert len(verification._walk_database({}, workers=4, min_events_per_worker=HEAD // 4)) == 4
    # inside a transaction other connections would not see what this one sees
    with transaction.atomic():
        assert len(verification._walk_database({}, workers=4, min_events_per_worker=1)) == 1


def test_audit_verify_with_workers_names_the_first_bad_event(trail, attacker, capsys):
    # given: two rows modified, one in each half of the chain
    attacker.modify(22)
    attacker.modify(17)
    # when
    with pytest.raises(CommandError) as failed:
        call_command("audit_verify", "--json", "--workers", "2", "--min-events-per-worker", "1")
    # then
    result = json.loads(capsys.readouterr().out)
    assert result["first_bad_seq"] == 17
    assert "first bad sequence number 17" in str(failed.value)


def test_audit_verify_with_workers_reports_an_intact_trail(trail, capsys):
    call_command("audit_verify", "--workers", "3", "--min-events-per-worker", "1")
    out = capsys.readouterr().out
    assert "The audit trail is intact: 30 events (head #30), 2 signed checkpoint(s) matched." in out


def test_a_worker_that_fails_or_dies_gives_no_segment_so_its_range_is_walked_here():
    # given: one worker that reports a failure and one that dies without a word
    context = multiprocessing.get_context("fork")
    failed_receiver, failed_sender = context.Pipe(duplex=False)
    failed = context.Process(target=failed_sender.send, args=(("error", "OperationalError: too many clients"),))
    dead_receiver, dead_sender = context.Pipe(duplex=False)
    dead = context.Process(target=os._exit, args=(3,))
    for process, sender in ((failed, failed_sender), (dead, dead_sender)):
        process.start()
        sender.close()
    # when / then: no segment from either, so _walk_database walks their ranges itself
    assert verification._result_of(failed, failed_receiver) is None
    assert verification._result_of(dead, dead_receiver) is None
    failed.join()
    assert dead.exitcode == 3
