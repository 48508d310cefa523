"""Kombu's Redis transport, with one Redis client per channel instead of one per message.

Kombu's Redis channel builds a new ``redis.Redis`` client for every message it publishes (on
the same connection pool), and building one sets up some 170 response callbacks: about a fifth
of the CPU a web request spends on sending a job's task. This channel builds that client once
and reuses it; a ``redis.Redis`` client is safe to share, since each command takes a connection
from the pool. Everything else is kombu's own. Used for ``redis://`` broker URLs (settings).
"""

from __future__ import annotations

from kombu.transport import redis


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
