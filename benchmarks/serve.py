"""The bidder over HTTP on loopback: wrk against bidcore's ASGI app and its peers, under
uvicorn and granian, in one run.

Apps (each served by one worker of each server):

- ``empty``: reads the body and answers 204: what the server itself costs, the ceiling;
- ``best Python``: :class:`engine_contestants.BestPython` (msgspec, bitmasks, numpy, lleaves'
  compiled entry point; see ``benchmarks/engine.py``) in a minimal ASGI app that reads the body,
  bids and answers 200 or 204, with no routing, header checks or metrics;
- ``bidcore, minimal app``: ``Engine.bid`` in that same minimal app;
- ``bidcore``: :func:`bidcore.asgi.app`, what ``bidcore serve`` runs (routing, version header,
  deadline, metrics), bids inline on the event loop; the decision log is off (``--no-log``);
- ``bidcore offloaded``: the same with ``offload=True`` (each bid in the loop's thread pool).

Every bidder answers the engine benchmark's typical request (``TYPICAL_REQUEST``: ~1 KB, one
in-app banner imp, 10 of 50 campaigns pass targeting, a 300-tree CTR model scores them) with a
bid; the run checks that first. The server is pinned to core 0 and wrk (one thread, enough
connections to keep the server busy) to core 1, so requests per second are per core; the
latencies are wrk's, at that saturation. Rounds interleave every (server, app) pair and the
table gives the median over rounds.

Run from the repository root: ``python benchmarks/serve.py`` (a few minutes; ``--quick`` checks
that it runs). Needs wrk, the ``serve`` extra and the bench requirements (lleaves).

This file is also the app factory the servers import (``serve:create_app``, with
``BIDCORE_BENCH_APP`` naming the app).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
WORK: Final = HERE.parent / ".benchmarks"
APPS: Final = {
    "empty": "empty",
    "best": "best Python",
    "bidcore-minimal": "bidcore, minimal app",
    "bidcore": "bidcore",
    "bidcore-offload": "bidcore offloaded",
}
SERVERS: Final = ("uvicorn", "granian")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# --- The apps (built in the server's worker) --------------------------------------------------


def create_app() -> AsgiApp:
    """The app ``BIDCORE_BENCH_APP`` names (a key of :data:`APPS`)."""
    name = os.environ.get("BIDCORE_BENCH_APP", "bidcore")
    if name == "empty":
        return _empty_app
    if name == "best":
        best = _best_python()
        return _minimal_app(lambda body: best.bid(body, now=time.time()))
    engine = _typical_engine()
    if name == "bidcore-minimal":
        return _minimal_app(engine.bid)
    from bidcore.asgi import app

    return app(engine, offload=name == "bidcore-offload")


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    while message.get("more_body", False):
        message = await receive()
        body += message.get("body", b"")
    return body


async def _empty_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return await _lifespan(receive, send) if scope["type"] == "lifespan" else None
    await _read_body(receive)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _minimal_app(bid: Callable[[bytes], bytes | None]) -> AsgiApp:
    """Read the body, bid, answer: the least an ASGI bidder can do."""

    async def bidder(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await _lifespan(receive, send) if scope["type"] == "lifespan" else None
        response = bid(await _read_body(receive))
        if response is None:
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return None
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(response)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": response})
        return None

    return bidder


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _typical_engine() -> Any:
    from engine import _corpus
    from engine_contestants import SPEC_TOML, ctr_model_path, typical_config

    import bidcore
    from bidcore import features

    path = ctr_model_path(_corpus(), WORK / "models")
    model = bidcore.models.from_lightgbm(path.read_text(), features=features.loads(SPEC_TOML))
    return bidcore.Engine(typical_config(), models={"ctr": model})


def _best_python() -> Any:
    import contextlib

    from engine import _corpus, _lleaves_forest, _LleavesDirect, _under_test
    from engine_contestants import SPEC_TOML, BestPython, ctr_model_path, typical_config
    from model_contestants import Env

    from bidcore import features

    config = typical_config()
    spec = features.loads(SPEC_TOML)
    path = ctr_model_path(_corpus(), WORK / "models")
    cleanup = contextlib.ExitStack()  # lives as long as the process: the scorer's files
    env = Env(WORK, 2, None, "no C harness here", cleanup)
    forest = _lleaves_forest(_under_test(path, len(spec.features)), env)
    return BestPython(
        config, spec, _LleavesDirect(forest, len(config.campaigns), len(spec.features))
    )


# --- The load test ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    """One wrk run: requests per second, latency percentiles (ms), and what went wrong."""

    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


_UNITS: Final = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text: str) -> Run:
    """The numbers of ``wrk --latency`` output.

    >>> parse_wrk('''Latency Distribution
    ...      50%  812.00us
    ...      99%    2.31ms
    ... Socket errors: connect 0, read 2, write 0, timeout 1
    ... Requests/sec:  12345.67''')
    Run(rps=12345.67, p50_ms=0.812, p99_ms=2.31, non_2xx=0, socket_errors=3)
    """

    def latency(percent: str) -> float:
        found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        if found is None:
            raise ValueError(f"no {percent}% latency in wrk's output:\n{text}")
        return round(float(found.group(1)) * _UNITS[found.group(2)], 3)

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if rps is None:
        raise ValueError(f"no Requests/sec in wrk's output:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return Run(
        rps=float(rps.group(1)),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def lua_post(body: bytes) -> str:
    """A wrk script that POSTs ``body`` as JSON."""
    text = body.decode()
    if "]==]" in text:
        raise ValueError("the body cannot go in a [==[ ]==] Lua string")
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.headers["x-openrtb-version"] = "2.6"\n'
        f"wrk.body = [==[{text}]==]\n"
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _server_command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "--factory", "serve:create_app",
            "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--lifespan", "on",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
        "--working-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--workers", "1", "--no-access-log", "--log-level", "warning",
        "serve:create_app",
    ]  # fmt: skip


class _Served:
    """A server running one app, pinned to core 0 when there is a core 1 for wrk."""

    def __init__(self, server: str, app: str, body: bytes, pin: bool) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/openrtb2/bid"
        command = _server_command(server, self.port)
        if pin:
            command = ["taskset", "-c", "0", *command]
        env = dict(os.environ, BIDCORE_BENCH_APP=app, PYTHONPATH=str(HERE))
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.status = self._wait(body)

    def _wait(self, body: bytes) -> int:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            request = urllib.request.Request(self.url, data=body, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return int(response.status)
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        _, stderr = self.process.communicate(timeout=10) if self.process.poll() else ("", "")
        self.stop()
        raise RuntimeError(f"the server did not answer: {stderr}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def _wrk(url: str, script: Path, seconds: float, connections: int, pin: bool) -> Run:
    duration = f"-d{max(1, round(seconds))}s"  # wrk takes whole seconds
    command = ["wrk", "-t1", f"-c{connections}", duration, "--latency", "-s", str(script), url]
    if pin:
        command = ["taskset", "-c", "1", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


def _check_answers(body: bytes) -> None:
    """The bidders must answer the typical request with the same bid before timing."""
    engine, best = _typical_engine(), _best_python()
    now = time.time()
    ours, theirs = engine.bid(body, now=now), best.bid(body, now=now)
    if ours is None or theirs is None:
        raise SystemExit("the typical request got no bid")
    a, b = json.loads(ours)["seatbid"], json.loads(theirs)["seatbid"]
    if a != b:
        raise SystemExit(f"bidcore and the best Python path answer differently:\n{a}\n{b}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round, to check it runs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="per measurement (whole seconds)"
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--apps", nargs="+", choices=list(APPS), default=list(APPS))
    parser.add_argument("--json", type=Path, default=WORK / "serve.json", help="result file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.warmup = 1, 1.0, 1.0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (make setup installs it)")
    from engine_contestants import TYPICAL_REQUEST

    _check_answers(TYPICAL_REQUEST)
    pin = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    load_before = os.getloadavg()
    runs: dict[tuple[str, str], list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="bidcore-serve-bench-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(lua_post(TYPICAL_REQUEST))
        for round_ in range(args.rounds):
            for server in args.servers:
                for app in args.apps:
                    served = _Served(server, app, TYPICAL_REQUEST, pin)
                    try:
                        expected = 204 if app == "empty" else 200
                        if served.status != expected:
                            raise SystemExit(f"{server} {app}: answered {served.status}")
                        _wrk(served.url, script, args.warmup, args.connections, pin)
                        run = _wrk(served.url, script, args.seconds, args.connections, pin)
                    finally:
                        served.stop()
                    runs.setdefault((server, app), []).append(run)
                    print(f"round {round_ + 1} {server} {app}: {run}", file=sys.stderr)
    table = report(runs, pin=pin, seconds=args.seconds, connections=args.connections)
    print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "load_before": load_before,
                "load_after": os.getloadavg(),
                "pinned": pin,
                "runs": {
                    f"{s} {a}": [dataclasses.asdict(r) for r in v] for (s, a), v in runs.items()
                },
                "table": table,
            },
            indent=2,
        )
    )
    return 0


def report(
    runs: dict[tuple[str, str], list[Run]], *, pin: bool, seconds: float, connections: int
) -> str:
    """The Markdown table: medians over rounds; (n.nnx) is the app's rate over the best
    Python app's under the same server."""
    lines = [
        "| server | app | req/s" + (" (one core)" if pin else "") + " | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for server in SERVERS:
        best = runs.get((server, "best"))
        best_rps = statistics.median(r.rps for r in best) if best else None
        for app, label in APPS.items():
            found = runs.get((server, app))
            if not found:
                continue
            rps = statistics.median(r.rps for r in found)
            ratio = f" ({rps / best_rps:.2f}x)" if best_rps and app.startswith("bidcore") else ""
            p50 = statistics.median(r.p50_ms for r in found)
            p99 = statistics.median(r.p99_ms for r in found)
            errors = sum(r.non_2xx + r.socket_errors for r in found)
            lines.append(
                f"| {server} | {label} | {rps:,.0f}{ratio} | {p50:.2f} | {p99:.2f} | {errors} |"
            )
    rounds = max((len(v) for v in runs.values()), default=0)
    lines.append("")
    lines.append(
        f"wrk: 1 thread, {connections} connections, {seconds:g} s per run, median of {rounds} "
        f"round(s); server on core 0, wrk on core 1: {'yes' if pin else 'no (fewer than 2 cores)'}."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
