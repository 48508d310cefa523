"""The filesystem broker (``controlplane.broker.FilesystemTransport``): a reader never takes a half-written
message, and an unreadable one left by a writer killed mid-write is dropped instead of killing the worker.

Real kombu connections on a real folder; no broker server is involved (that is the transport's point).
"""

from __future__ import annotations

import logging

from kombu import Connection, Queue

from controlplane.broker import FilesystemTransport


def _connection(folder):
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "polling_interval": 0.05}
    return Connection("filesystem://", transport=FilesystemTransport, transport_options=options)


def test_a_message_appears_only_when_written_whole(tmp_path):
    # given a queue on a folder
    with _connection(tmp_path) as conn:
        queue = Queue("jobs", routing_key="jobs")
        queue(conn.default_channel).declare()
        # when a message is published
        conn.default_channel.basic_publish(
            conn.default_channel.prepare_message('{"job": 7}', content_type="application/json"),
            exchange="",
            routing_key="jobs",
        )
        # then the folder holds one complete message and no file being written
        names = sorted(p.name for p in tmp_path.iterdir())
        assert len(names) == 1 and names[0].endswith(".jobs.msg"), names


def test_an_unreadable_message_is_dropped_and_the_next_one_read(tmp_path, caplog):
    # given a message file left empty by a writer killed mid-write, then a good message,
    # and a file still being written (not yet renamed into the queue)
    with _connection(tmp_path) as conn:
        channel = conn.default_channel
        Queue("jobs", routing_key="jobs")(channel).declare()
        (tmp_path / "0_dead.jobs.msg").write_bytes(b"")
        (tmp_path / "1_half.jobs.msg.writing").write_bytes(b'{"bo')
        channel.basic_publish(channel.prepare_message("hello"), exchange="", routing_key="jobs")
        # when a consumer reads the queue
        with caplog.at_level(logging.WARNING, logger="controlplane.broker"):
            message = channel.basic_get("jobs", no_ack=True)
        # then it got the good message, the empty one is gone with a warning, and the partial one is untouched
        assert message is not None and message.body in (b"hello", "hello")
        assert "dropped an unreadable message from queue jobs" in caplog.text
        assert not (tmp_path / "0_dead.jobs.msg").exists()
        assert (tmp_path / "1_half.jobs.msg.writing").exists()
        assert channel.basic_get("jobs", no_ack=True) is None
