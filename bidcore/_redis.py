"""The Redis client of bidcore's background threads (the decision log's stream sink, the
shared budget ledger): it fails fast, so a Redis that does not answer delays one tick by at
most ``timeout`` seconds, and never retries, since the next tick does."""

from __future__ import annotations

import os
import secrets
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

__all__ = ["fail_fast_client", "process_id"]


def process_id() -> str:
    """This process's name in shared records and streams: host, pid and a random suffix, so a
    restarted process (or one whose pid is reused) is a new one."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def fail_fast_client(url: str, *, timeout: float, needed_by: str) -> redis.Redis:
    """A client of the Redis at ``url`` that gives up after ``timeout`` seconds (connecting or
    answering) and does not retry. ``needed_by`` names the caller in the error raised when
    the ``redis`` package (the ``bidcore[serve]`` extra) is missing."""
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{needed_by} needs the redis package: pip install 'bidcore[serve]'"
        ) from err
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
