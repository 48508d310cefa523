"""The coalescing wake-up (apps/jobs/doorbell.py): one message per interval, never a ring left unanswered."""

from __future__ import annotations

import os
import threading
import time

from apps.jobs.doorbell import Doorbell


class Recorder:
    """A send function that remembers when it was called."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.called = threading.Event()

    def __call__(self) -> None:
        self.times.append(time.monotonic())
        self.called.set()

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.times) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(self.times) >= count, f"{len(self.times)} message(s) sent, expected {count}"


def test_a_first_ring_is_sent_at_once():
    # given a doorbell with a long interval
    sent = Recorder()
    bell = Doorbell(sent, 5.0)

    # when it is rung once
    rung = time.monotonic()
    bell.ring()

    # then one message goes out straight away
    sent.wait_for(1, timeout=1.0)
    assert sent.times[0] - rung < 0.5
    assert bell.sent == 1


def test_rings_within_an_interval_become_one_message_sent_after_the_last_of_them():
    # given a doorbell that has just sent a message
    sent = Recorder()
    bell = Doorbell(sent, 0.3)
    bell.ring()
    sent.wait_for(1)

    # when it is rung a hundred times within the interval
    for _ in range(100):
        bell.ring()
    last_ring = time.monotonic()

    # then exactly one more message is sent, an interval after the first, and after the last ring
    sent.wait_for(2)
    time.sleep(0.5)
    assert len(sent.times) == 2
    assert sent.times[1] - sent.times[0] >= 0.3 - 0.01
    assert sent.times[1] >= last_ring


def test_a_ring_after_the_interval_is_sent_without_waiting():
    # given a doorbell whose last message went out longer than an interval ago
    sent = Recorder()
    bell = Doorbell(sent, 0.05)
    bell.ring()
    sent.wait_for(1)
    time.sleep(0.1)

    # when it is rung again
    rung = time.monotonic()
    bell.ring()

    # then the message goes out at once
    sent.wait_for(2)
    assert sent.times[1] - rung < 0.05


def test_a_failed_send_is_dropped_and_the_next_ring_still_sends():
    # given a broker that refuses the first message
    calls: list[str] = []

    def send() -> None:
        calls.append("send")
        if len(calls) == 1:
            raise ConnectionError("broker down")

    bell = Doorbell(send, 0.01)

    # when it is rung, fails, and is rung again
    bell.ring()
    deadline = time.monotonic() + 2
    while not calls and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)
    bell.ring()
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)

    # then the doorbell kept working: the second message was sent
    assert calls == ["send", "send"]
    assert bell.sent == 1


def test_flush_sends_a_pending_ring_at_once():
    # given a ring waiting for its interval
    sent = Recorder()
    bell = Doorbell(sent, 10.0)
    bell.ring()
    sent.wait_for(1)
    bell.ring()

    # when the process flushes it (at exit)
    bell.flush()

    # then it is sent now, and not a second time when the interval is up
    assert len(sent.times) == 2
    bell.flush()
    assert len(sent.times) == 2


def test_a_forked_child_rings_with_a_thread_of_its_own():
    # given a doorbell already used by this process
    read_end, write_end = os.pipe()

    def send() -> None:
        os.write(write_end, f"{os.getpid()}\n".encode())

    bell = Doorbell(send, 0.01)
    bell.ring()
    parent_line = os.read(read_end, 64).decode().strip()

    # when a forked child rings it
    pid = os.fork()
    if pid == 0:  # the child: its parent's sending thread does not exist here
        try:
            bell.ring()
            time.sleep(0.5)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    child_line = os.read(read_end, 64).decode().strip()
    os.close(read_end)
    os.close(write_end)

    # then the child's ring was sent, by the child
    assert parent_line == str(os.getpid())
    assert child_line == str(pid)


def test_flush_waits_for_a_message_being_sent():
    # given a slow broker, and a ring its thread is sending
    sending = threading.Event()
    done: list[float] = []

    def slow_send() -> None:
        sending.set()
        time.sleep(0.3)
        done.append(time.monotonic())

    bell = Doorbell(slow_send, 10.0)
    bell.ring()
    assert sending.wait(2)

    # when the process flushes it (at exit)
    bell.flush()

    # then the message was sent in full before flush returned
    assert len(done) == 1
