"""Kombu's Redis and filesystem transports, each with one flaw of its own fixed.

Redis: one Redis client per channel instead of one per message.

Kombu's Redis channel builds a new ``redis.Redis`` client for every message it publishes (on
the same connection pool), and building one sets up some 170 response callbacks: about a fifth
of the CPU a web request spends on sending a job's task. This channel builds that client once
and reuses it; a ``redis.Redis`` client is safe to share, since each command takes a connection
from the pool. Everything else is kombu's own. Used for ``redis://`` broker URLs (settings).

Filesystem: kombu writes a message into the queue folder under its final name and then fills it,
so a reader can take the file while it is still empty and die on the JSON error (``Unrecoverable
error: JSONDecodeError``), and a writer killed mid-write leaves an empty message that kills every
worker that reads it. Here a message is written under a name the readers skip and renamed into
place when complete (atomic within the folder), and a message that still cannot be read is
dropped with a warning: the job table, not the broker, remembers the work, and the sweeper sends
it again. Used for ``filesystem://`` broker URLs (settings).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, redis
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

logger = logging.getLogger(__name__)


class Channel(redis.Channel):
    _shared_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:  # the consumer's event-loop client: kombu's own handling
            return super()._create_client(asynchronous=True)
        if self._shared_client is None:
            self._shared_client = super()._create_client()
        return self._shared_client


class Transport(redis.Transport):
    Channel = Channel


class FilesystemChannel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Write the message beside the queue, then rename it in: readers see it whole or not at all."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.writing"  # kombu's readers take only names ending in ".<queue>.msg"
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        """The next readable message; one that is not (left by a writer killed mid-write) is dropped."""
        while True:
            try:
                return super()._get(queue)
            except ValueError as exc:  # the JSON decoder's error: kombu has already taken the file away
                logger.warning("broker: dropped an unreadable message from queue %s (%s)", queue, type(exc).__name__)


class FilesystemTransport(filesystem.Transport):
    Channel = FilesystemChannel
