"""``bidcore serve``: the bidder over HTTP under uvicorn or granian, one engine per worker.

Each worker process builds its own app and engine with :func:`create_app`
(``bidcore.serve:create_app``, the factory the servers import; with one uvicorn worker,
:func:`serve` calls it in its own process). It reads its settings from ``BIDCORE_*``
environment variables, which :func:`serve` sets before starting the server, so both servers'
multi-process modes work the same way:

- ``BIDCORE_CONFIG``: the bidder config (default: the bundled demo, :mod:`bidcore.demo`);
- ``BIDCORE_SMOKE_REQUEST``: the request every new engine must decide without error before it
  serves (default: the demo's sample request);
- ``BIDCORE_LOG_DIR``: the decision-log directory (empty: no decision log); each worker writes
  its own files there, named for its pid;
- ``BIDCORE_OFFLOAD``: ``1`` to bid in a thread pool instead of on the event loop (slower);
- ``BIDCORE_RELOAD_VIA_PARENT``: ``1`` when several workers share the port: ``/admin/reload``
  then asks the parent to pass SIGHUP to every worker;
- ``BIDCORE_METRICS_DIR``: with several workers, the directory :func:`serve` makes for the run
  (and removes at the end), where each worker publishes its counts about once a second, so
  that ``/metrics``, whichever worker answers it, reports the whole server
  (:mod:`bidcore.metrics` says how, and how stale the other workers' counts may be).

Reloading: ``kill -HUP`` the serve process (with several workers, the parent passes the signal
to each worker instead of restarting them) or ``POST /admin/reload`` from the machine itself.

Pacing: each worker runs a :class:`bidcore.budget.Pacer` fed by the bill notices it receives
(and, with the shared ledger, by the fleet's spend from Redis); it paces while the config's
``[pacing]`` table has ``enabled = true`` (a reload may turn it on or off). With several
workers and no shared ledger, each paces on its own share of the spend (``docs/pacing.md``).

Budgets: with ``[budget] enabled = true`` the process holds its bids to the daily budgets
through a ledger; with ``store = "redis"`` it (and every other process on the same Redis)
leases slices of each budget from Redis instead of granting itself all of it
(``docs/budget.md``). A bid's registration lives in the process that made it, and workers
sharing a port cannot choose which of them a notice reaches, so a budget needs one worker per
serve process: several workers with a budget are refused at startup and at a reload (run one
``bidcore serve`` per port instead; with ``store = "redis"`` they share the budgets).

Running it yourself: ``uvicorn --factory bidcore.serve:create_app`` or ``granian --interface
asgi --factory bidcore.serve:create_app`` work too, with two differences: their own
multi-worker supervisors answer SIGHUP by restarting the workers, not by a hot reload, and each
worker's ``/metrics`` reports that worker alone unless ``BIDCORE_METRICS_DIR`` names an empty
directory for them to share.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, TextIO

from bidcore import demo
from bidcore.asgi import App, EngineHolder, Notice, SighupLatch, app
from bidcore.budget.ledger import BudgetLedger
from bidcore.budget.pacer import Pacer
from bidcore.budget.shared import SharedBudgetLedger
from bidcore.config import load as load_config
from bidcore.decisionlog import DecisionLogWriter, FileSink
from bidcore.engine import DecisionLog, Engine, Ledger
from bidcore.errors import BidcoreError
from bidcore.metrics import BidderMetrics

__all__ = ["DEFAULT_LOG_DIR", "Settings", "build_app", "create_app", "serve"]

log = logging.getLogger("bidcore.serve")

SEVERAL_WORKERS_WITH_BUDGET: Final = (
    "[budget] enabled needs one worker: a notice may reach a worker that did not make the bid, "
    "which could neither settle nor count it; run one bidcore serve per port instead (with "
    'store = "redis" they share the budgets)'
)

ServerName = Literal["uvicorn", "granian"]
DEFAULT_LOG_DIR: Final = Path("bidcore-decisions")
"""Where the decision log goes unless told otherwise: under the current directory, where the
person who started the bidder looks first (the startup line says where it is)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What each worker needs to build its app; travels to the workers as environment
    variables (:meth:`to_env`, :meth:`from_env`).

    >>> s = Settings(log_dir=Path("/tmp/decisions"), offload=True, metrics_dir=Path("/tmp/m"))
    >>> Settings.from_env(s.to_env()) == s
    True
    >>> Settings.from_env({}).config == demo.config_path()
    True
    """

    config: Path = field(default_factory=demo.config_path)
    smoke_request: Path = field(default_factory=demo.sample_request_path)
    log_dir: Path | None = None
    offload: bool = False
    reload_via_parent: bool = False
    metrics_dir: Path | None = None

    def to_env(self) -> dict[str, str]:
        """The settings as ``BIDCORE_*`` variables (absolute paths)."""
        return {
            "BIDCORE_CONFIG": str(self.config.absolute()),
            "BIDCORE_SMOKE_REQUEST": str(self.smoke_request.absolute()),
            "BIDCORE_LOG_DIR": "" if self.log_dir is None else str(self.log_dir.absolute()),
            "BIDCORE_OFFLOAD": "1" if self.offload else "0",
            "BIDCORE_RELOAD_VIA_PARENT": "1" if self.reload_via_parent else "0",
            "BIDCORE_METRICS_DIR": (
                "" if self.metrics_dir is None else str(self.metrics_dir.absolute())
            ),
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings from ``BIDCORE_*`` variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        log_dir = env.get("BIDCORE_LOG_DIR", "")
        metrics_dir = env.get("BIDCORE_METRICS_DIR", "")
        return cls(
            config=Path(env.get("BIDCORE_CONFIG") or demo.config_path()),
            smoke_request=Path(env.get("BIDCORE_SMOKE_REQUEST") or demo.sample_request_path()),
            log_dir=Path(log_dir) if log_dir else None,
            offload=env.get("BIDCORE_OFFLOAD") == "1",
            reload_via_parent=env.get("BIDCORE_RELOAD_VIA_PARENT") == "1",
            metrics_dir=Path(metrics_dir) if metrics_dir else None,
        )


def create_app() -> App:
    """The app of one worker, from the ``BIDCORE_*`` environment: what the servers import."""
    if threading.current_thread() is threading.main_thread():
        # Until the app's handler is installed at lifespan startup, a SIGHUP (the parent
        # passing one on, an operator) must not end the worker, as it does by default, nor be
        # lost: the latch keeps it, and the app reloads once it can.
        signal.signal(signal.SIGHUP, SighupLatch())
    _log_to_stderr()
    return build_app(Settings.from_env())


def build_app(settings: Settings) -> App:
    """Load the engine (raising :class:`bidcore.BidcoreError` with the reason if it cannot
    serve), and the app around it, reloading on SIGHUP and pacing the daily budgets when the
    config enables pacing.

    >>> bidder = build_app(Settings())
    >>> bidder.holder.ready, len(bidder.holder.engine.config.campaigns)
    (True, 13)
    """
    smoke = settings.smoke_request.read_bytes()
    on_startup: list[Callable[[], None]] = []
    on_shutdown: list[Callable[[], None]] = []
    on_notice: Callable[[Notice], None] | None = None
    metrics = BidderMetrics(shared_dir=settings.metrics_dir)
    decision_log: DecisionLog | None = None
    if settings.log_dir is not None:
        decisions = _DecisionLogging(settings.log_dir, metrics)
        decision_log = decisions.buffer
        on_startup.append(decisions.start)
        on_shutdown.append(decisions.stop)
        on_notice = decisions.notice

    # Made at the first load whose config enables it, then kept across reloads: the accounts
    # and the bids in flight outlive each engine (turning it off takes a restart).
    ledgers: list[Ledger] = []

    def load() -> Engine:
        config = load_config(settings.config)
        if config.budget.enabled and settings.reload_via_parent:
            raise BidcoreError(SEVERAL_WORKERS_WITH_BUDGET)
        if config.budget.enabled and not ledgers:
            b = config.budget
            ledgers.append(
                Ledger(
                    ttl_seconds=b.bid_ttl_seconds,
                    spend_on=b.spend_on,
                    capacity=b.max_in_flight,
                    cap_capacity=b.max_capped_users,
                )
            )
        return Engine(
            config,
            base_dir=settings.config.parent,
            log=decision_log,
            ledger=ledgers[0] if ledgers else None,
        )

    # After the decision log's hooks: the first snapshot sees the log, the last its last drain.
    on_startup.append(metrics.start_publishing)
    on_shutdown.append(metrics.stop_publishing)

    holder = EngineHolder(loader=load, smoke=smoke, source=str(settings.config))
    first = holder.load()
    engine = holder.engine
    if not first.ok or engine is None:
        raise BidcoreError(f"{settings.config}: cannot serve: {first.error}")
    log.info("loaded %s: %d campaigns, models %s", first.source, first.campaigns, first.models)
    # With [budget] store = "redis" the fleet's processes lease their money from Redis; the
    # ledger's thread ticks every tick_seconds and stop() gives the leases back.
    budget: BudgetLedger | None = None
    if ledgers:
        kind = SharedBudgetLedger if engine.config.budget.store == "redis" else BudgetLedger
        budget = kind(engine.config, ledgers[0])
    # Made whether or not the config enables pacing, so that a reload can turn it on; while
    # disabled it runs no thread and writes nothing but the engines' defaults. In a fleet it
    # paces on the fleet's spend, which the shared ledger learns from Redis.
    fleet = budget.fleet_spent_micros if isinstance(budget, SharedBudgetLedger) else None
    pacer = Pacer(engine.config, engine, fleet_spend=fleet)
    return app(
        holder,
        metrics=metrics,
        pacer=pacer,
        budget=budget,
        offload=settings.offload,
        on_notice=on_notice,
        reload_on_sighup=True,
        reload_via_parent=settings.reload_via_parent,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


class _DecisionLogging:
    """The decision log of one worker: the native buffer its engines write into (the same one
    across reloads), drained by a :class:`~bidcore.decisionlog.DecisionLogWriter` into files
    under ``directory`` named for the worker's pid. The writer's thread starts at lifespan
    startup, in the worker process (a thread does not survive a fork), and its last drain runs
    at shutdown."""

    def __init__(self, directory: Path, metrics: BidderMetrics) -> None:
        self.directory = directory
        self.metrics = metrics
        self.buffer = DecisionLog(65_536)
        self.writer: DecisionLogWriter | None = None

    def start(self) -> None:
        self.writer = DecisionLogWriter(self.buffer, FileSink(self.directory))
        self.metrics.track_decision_log(self.writer.stats)

    def stop(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()

    def notice(self, notice: Notice) -> None:
        """A notice record next to the decisions (dropped, and counted by the writer, if its
        queue is full)."""
        if self.writer is not None:
            self.writer.write_notice(
                notice.kind,
                request=notice.request,
                imp=notice.imp,
                campaign=notice.campaign,
                creative=notice.creative,
                price_micros=notice.price_micros,
                currency=notice.currency,
                loss_reason=notice.loss_reason,
                min_to_win_micros=notice.min_to_win_micros,
                ts=notice.received_at,
            )


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    server: ServerName = "uvicorn",
    out: TextIO = sys.stdout,
) -> int:
    """Run the bidder until interrupted; returns the exit status: 2 if the config or the smoke
    request cannot be read, 1 if the engine cannot be built or fails its smoke decision (the
    reason on standard error). Once the engine is known to load, prints one line: where it
    listens and a curl command to try it."""
    made: Path | None = None  # the workers' metrics directory, when made here
    if workers > 1:
        if settings.metrics_dir is None:
            made = Path(tempfile.mkdtemp(prefix="bidcore-metrics-"))
        shared = settings.metrics_dir or made
        settings = replace(settings, reload_via_parent=True, metrics_dir=shared)
    else:
        settings = replace(settings, metrics_dir=None)  # one worker: its own counts are all
    try:
        return _serve(settings, host, port, workers, server, out)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def _serve(
    settings: Settings, host: str, port: int, workers: int, server: ServerName, out: TextIO
) -> int:
    os.environ.update(settings.to_env())
    try:
        config = load_config(settings.config)  # fail here, once, rather than in every worker
        settings.smoke_request.read_bytes()
        if workers > 1 and config.budget.enabled:
            raise BidcoreError(SEVERAL_WORKERS_WITH_BUDGET)
    except (BidcoreError, OSError) as err:
        print(f"bidcore serve: {_reason(err)}", file=sys.stderr)
        return 2
    application: App | None = None
    try:
        # One process: its app, built here. Worker processes: each builds its own, so try one
        # here first, for a clear error rather than a worker's failure in the server's log.
        if server == "uvicorn" and workers == 1:
            application = create_app()
        else:
            _try_load(settings)
    except (BidcoreError, OSError) as err:
        print(f"bidcore serve: {_reason(err)}", file=sys.stderr)
        return 1
    print(_startup_line(settings, host, port, workers, server), file=out, flush=True)
    if application is not None:
        _run_uvicorn_here(application, host, port)
    elif server == "granian":
        _run_granian(host, port, workers)
    else:
        _run_uvicorn_workers(host, port, workers)
    return 0


def _try_load(settings: Settings) -> None:
    """Load the engine once and make its smoke decision; raise with the reason if it fails."""
    holder = EngineHolder(
        loader=lambda: Engine.load(settings.config), smoke=settings.smoke_request.read_bytes()
    )
    result = holder.load()
    if not result.ok:
        raise BidcoreError(f"{settings.config}: cannot serve: {result.error}")


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    return str(err)


def _startup_line(settings: Settings, host: str, port: int, workers: int, server: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    decisions = "off" if settings.log_dir is None else str(settings.log_dir.absolute())
    return (
        f"bidcore serve: {url} ({server}, {workers} worker{'s' if workers > 1 else ''}, "
        f"config {settings.config}, decision log {decisions}); try: "
        f"curl -s -H 'content-type: application/json' "
        f"--data-binary @{settings.smoke_request} {url}/openrtb2/bid"
    )


def _uvicorn_config(app: Any, host: str, port: int, workers: int) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


def _run_uvicorn_here(application: App, host: str, port: int) -> None:
    import uvicorn

    uvicorn.Server(_uvicorn_config(application, host, port, 1)).run()


def _run_uvicorn_workers(host: str, port: int, workers: int) -> None:
    from uvicorn.supervisors import Multiprocess

    class SighupToWorkers(Multiprocess):
        """uvicorn's supervisor, except that SIGHUP reloads each worker's engine in place
        (uvicorn's own restarts the worker processes, dropping their connections)."""

        def handle_hup(self) -> None:
            for process in self.processes:
                if process.pid is not None:
                    os.kill(process.pid, signal.SIGHUP)

    config = _uvicorn_config("bidcore.serve:create_app", host, port, workers)
    SighupToWorkers(config, sockets=[config.bind_socket()]).run()


def _run_granian(host: str, port: int, workers: int) -> None:
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels
    from granian.server.mp import MPServer

    class SighupToWorkers(MPServer):
        """granian's process supervisor, except that SIGHUP reloads each worker's engine in
        place (granian's own respawns the workers)."""

        def signal_handler_reload(self, *args: Any, **kwargs: Any) -> None:
            for worker in self.wrks:
                if worker.inner.pid is not None:
                    os.kill(worker.inner.pid, signal.SIGHUP)

    SighupToWorkers(
        "bidcore.serve:create_app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        factory=True,
        log_level=LogLevels.warning,
        log_access=False,
    ).serve()


def _log_to_stderr() -> None:
    """bidcore's serving log (loads, reloads, failures) on standard error, once per process,
    unless the application configured logging itself."""
    logger = logging.getLogger("bidcore")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"bidcore serve [{os.getpid()}] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
