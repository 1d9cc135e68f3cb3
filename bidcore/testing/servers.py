"""Real servers for tests: a ``redis-server`` on a free 127.0.0.1 port, started and stopped by
the test itself.

The server runs from a temporary directory without persistence (no RDB snapshots, no AOF), so
nothing outlives the test. It can be stopped and started again on the same port, or killed,
mid-test: what a sink or a budget ledger must survive. ``redis_server(durable=True)`` writes
an append-only file, synced on every write (``appendfsync always``), in that directory: a
server killed and started again has every write it acknowledged.

>>> with redis_server() as server:
...     port = server.port
...     server.ping()
...     server.stop()
...     server.ping()
...     server.start()
...     server.ping(), server.port == port
...     server.kill()
...     server.running
...     server.start()
...     server.ping()
True
False
(True, True)
False
True

>>> import redis
>>> with redis_server(durable=True) as server:
...     client = redis.Redis.from_url(server.url)
...     client.set("k", "v")
...     server.kill()
...     server.start()
...     client.get("k")
...     client.close()
True
b'v'

Needs the ``redis-server`` binary (Debian's ``redis-server`` package, which ``make setup``
installs through ``.ci/system-packages``); without it :func:`redis_server` raises
``FileNotFoundError`` saying so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

__all__ = ["RedisServer", "free_port", "redis_server"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's choice; another process may take
    it before it is used, so a server started on it retries with a new one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` process of a test. ``url`` is ``redis://127.0.0.1:PORT/0``."""

    def __init__(
        self, directory: Path, *, executable: str, host: str = "127.0.0.1", durable: bool = False
    ) -> None:
        self.directory: Final = directory
        self.executable: Final = executable
        self.host: Final = host
        self.durable: Final = durable
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float = 10.0) -> None:
        """Starts the server and waits until it answers ``PING``. A first start picks a free
        port (another if that one is taken meanwhile); a restart uses the same port, so that
        clients holding ``url`` reconnect, and raises if something else took it."""
        if self.running:
            return
        if self.port:
            if not self._launch(timeout):
                raise RuntimeError(
                    f"redis-server did not restart on port {self.port}:\n{self._log_tail()}"
                )
            return
        for _attempt in range(5):
            self.port = free_port(self.host)
            if self._launch(timeout):
                return
        raise RuntimeError(f"redis-server did not start; its log:\n{self._log_tail()}")

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stops the server (SIGTERM; it exits at once, having synced its append-only file
        if durable) and waits."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kills the server (SIGKILL), as a crash would; the port is free afterwards."""
        self._end(signal.SIGKILL, 10.0)

    def ping(self, *, timeout: float = 1.0) -> bool:
        """Whether the server answers ``PING`` (with ``+PONG``) within ``timeout`` seconds."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _launch(self, timeout: float) -> bool:
        log = self.directory / "redis.log"
        command = [
            self.executable,
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            *(
                ("--appendonly", "yes", "--appendfsync", "always")
                if self.durable
                else ("--appendonly", "no")
            ),
            "--daemonize", "no",
            "--logfile", str(log),
            "--databases", "1",
        ]  # fmt: skip
        # Errors before the log file opens (a bad option) go to stderr: keep them in a file
        # too, never in a pipe nobody reads.
        with (self.directory / "redis.out").open("ab") as out:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:  # exited: the port was taken, or a bad option
                self._reap()
                return False
            if self.ping(timeout=0.2):
                return True
            time.sleep(0.01)
        self._end(signal.SIGKILL, 10.0)
        raise TimeoutError(f"redis-server did not answer PING in {timeout} s:\n{self._log_tail()}")

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(sig)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._reap()

    def _reap(self) -> None:
        if self._process is not None:
            self._process.wait()
            self._process = None

    def _log_tail(self) -> str:
        lines: list[str] = []
        for name in ("redis.out", "redis.log"):
            with contextlib.suppress(OSError):
                lines += (self.directory / name).read_text(errors="replace").splitlines()[-20:]
        return "\n".join(lines) or "(no output)"


@contextlib.contextmanager
def redis_server(executable: str | None = None, *, durable: bool = False) -> Iterator[RedisServer]:
    """A running ``redis-server`` on a free 127.0.0.1 port, stopped (and its temporary
    directory removed) on leaving the block; ``durable``: with its append-only file synced on
    every write, so that a kill and a start keep every acknowledged write."""
    found = executable or shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(found, os.X_OK):
        raise FileNotFoundError(
            f"redis-server not found ({found}): install Debian's redis-server package "
            "(`make setup` runs .ci/system-packages, which does)"
        )
    with tempfile.TemporaryDirectory(prefix="bidcore-redis-") as directory:
        server = RedisServer(Path(directory), executable=found, durable=durable)
        server.start()
        try:
            yield server
        finally:
            server.kill()
