"""The ``bidcore`` command.

``bidcore validate FILE...`` checks bid requests with the native parser: one line per request,
``OK`` or the error with its JSON path; the exit status is 1 if any request fails, 2 if a file
cannot be read.

``bidcore bid CONFIG FILE...`` answers the requests of the files with the configured engine:
one line per request (the response, ``no bid`` or the error) and a summary on stderr.

``bidcore compile MODEL.txt -o ARTIFACT`` compiles a LightGBM model into a model artifact
(:func:`bidcore.compile.build_artifact`; needs the ``bidcore[compile]`` extra and gcc) and prints
one line saying what it wrote; the exit status is 1 if the model is refused, 2 if an input cannot
be read or the output exists.

``bidcore config schema`` prints the JSON Schema of a bidder configuration (for editors);
``bidcore config check FILE...`` loads each configuration (TOML, JSON or YAML, by suffix) and
prints ``OK FILE`` or ``FILE: error`` with the key path; the exit status is 1 if any fails.

``bidcore experiments assign LAYERS ID...`` prints, for each id, its experiment, arm and bucket in
every layer of the ``[experiments]`` table of LAYERS (a config file), as the engine and every
GrowthBook SDK assign it; ``bidcore experiments report LOG... -o DIR`` analyses the decision
logs per experiment arm, prints the table and writes a chart per metric
(:mod:`bidcore.experiments`).

``bidcore log schema`` prints the JSON Schema of a decision log record
(``bidcore/schemas/decision-vN.json``, :mod:`bidcore.decisionlog.schema`).

``bidcore serve`` runs the bidder over HTTP (:mod:`bidcore.serve`; the bundled demo bidder
unless ``--config`` names one); ``bidcore replay URL [FILE...]`` sends bid requests at a
running bidder and prints the bid rate, status counts and latency percentiles
(:mod:`bidcore.replay`); its exit status is 1 if any request got no answer or a 5xx.

``bidcore monitor URL`` prints the drift (PSI) of a running bidder's models per model and
feature, read from its ``/metrics``; ``bidcore monitor --config CONFIG FILE...`` computes it
offline, running the configured engine over the requests of the files (:mod:`bidcore.monitoring`).
With ``--fail-above PSI`` the exit status is 1 if any PSI is above it; 2 if the page, the config
or a file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from bidcore._core import Limits, RequestParser
from bidcore.config import load as load_config
from bidcore.config import schema as config_schema
from bidcore.errors import BidcoreError, ConfigError, InvalidRequestError

__all__ = ["main"]

_LINE_SUFFIXES = {".jsonl", ".ndjson"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    status: int = args.run(args, sys.stdout)
    return status


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bidcore", description="bidcore's command line.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check OpenRTB bid requests (JSON or JSON lines) with the native parser",
        description="Check bid requests: one line per request with OK or the error and its "
        "JSON path. Files ending in .jsonl/.ndjson, and standard input (-), hold one request "
        "per line; other files hold one request. Exit status 1 if any request fails.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="a file, or - for stdin")
    validate.add_argument(
        "--lines", action="store_true", help="read every file as JSON lines, whatever its name"
    )
    validate.add_argument("-q", "--quiet", action="store_true", help="print failures only")
    validate.add_argument("--max-body-bytes", type=int, default=Limits().max_body_bytes)
    validate.add_argument("--max-depth", type=int, default=Limits().max_depth)
    validate.add_argument("--max-imps", type=int, default=Limits().max_imps)
    validate.add_argument("--max-string-bytes", type=int, default=Limits().max_string_bytes)
    validate.set_defaults(run=_validate)

    compile_ = commands.add_parser(
        "compile",
        help="compile a LightGBM model into a model artifact directory",
        description="Compile a LightGBM model text with TL2cgen and gcc, check the library "
        "against LightGBM, and write the artifact directory the engine loads (model, feature "
        "spec, metadata, reference histograms, compiled library, manifest). Exit status 1 if "
        "the model is refused, 2 if an input cannot be read or the output exists.",
    )
    compile_.add_argument("model", metavar="MODEL.txt", help="LightGBM model text")
    compile_.add_argument(
        "-o", "--output", required=True, metavar="ARTIFACT", help="artifact directory to write"
    )
    compile_.add_argument(
        "--features", metavar="SPEC", help="feature spec (TOML), copied as features.toml"
    )
    compile_.add_argument("--name", help="model name (default: the model file's stem)")
    compile_.add_argument(
        "--version", help="model version (default: 12 hex digits of the model's SHA-256)"
    )
    compile_.add_argument(
        "--metrics", metavar="JSON_FILE", help="training metrics (a JSON object) to record"
    )
    compile_.add_argument(
        "--sample",
        metavar="NPY_FILE",
        help="rows (2-D .npy, NaN = missing) for the agreement check and reference histograms",
    )
    compile_.add_argument(
        "--no-require-compiled",
        dest="require_compiled",
        action="store_false",
        help="if the library cannot reproduce the model, write the artifact without it",
    )
    compile_.add_argument("--jobs", type=int, metavar="N", help="parallel gcc runs")
    compile_.add_argument("--parallel-comp", type=int, metavar="N", help="C translation units")
    compile_.add_argument("--cache-dir", metavar="DIR", help="compiled-library cache")
    compile_.add_argument("--overwrite", action="store_true", help="replace ARTIFACT if present")
    compile_.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    compile_.add_argument("-v", "--verbose", action="store_true", help="log each step")
    compile_.set_defaults(run=_compile)

    config = commands.add_parser(
        "config",
        help="bidder configurations: print the JSON Schema, check files",
        description="Work with bidder configurations (TOML, JSON or YAML).",
    )
    actions = config.add_subparsers(required=True, metavar="ACTION")
    schema = actions.add_parser(
        "schema",
        help="print the JSON Schema of a configuration",
        description="Print the JSON Schema of a bidder configuration (indent 2), for editors.",
    )
    schema.set_defaults(run=_config_schema)
    check = actions.add_parser(
        "check",
        help="load configurations and report the first error of each",
        description="Load each configuration (format by suffix: .toml, .json, .yaml, .yml) and "
        "print OK FILE, or FILE: the error with its key path. Exit status 1 if any fails.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="a configuration file")
    check.set_defaults(run=_config_check)

    bid = commands.add_parser(
        "bid",
        help="answer bid requests from files with a configured engine",
        description="Load the bidder configuration (models relative to it) and answer every "
        "request of the files: one line per request, the response JSON or `no bid` or the "
        "error; then a summary (requests, bids, no-bid reasons, time per request) on stderr. "
        "Files ending in .jsonl/.ndjson, and -, hold one request per line.",
    )
    bid.add_argument("config", metavar="CONFIG", help="bidder configuration (toml, json, yaml)")
    bid.add_argument("files", nargs="+", metavar="FILE", help="a file, or - for stdin")
    bid.add_argument("--lines", action="store_true", help="read every file as JSON lines")
    bid.add_argument("-q", "--quiet", action="store_true", help="print the summary only")
    bid.add_argument("--now", type=float, help="the requests' time (seconds since the epoch)")
    bid.set_defaults(run=_bid)
    _add_log_command(commands)
    _add_serve_command(commands)
    _add_replay_command(commands)
    _add_monitor_command(commands)
    _add_experiments_command(commands)
    return parser


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    request_parser = RequestParser(
        Limits(
            max_body_bytes=args.max_body_bytes,
            max_depth=args.max_depth,
            max_imps=args.max_imps,
            max_string_bytes=args.max_string_bytes,
        )
    )
    checked = failed = 0
    unreadable = False
    for where, body in _requests(args.files, force_lines=args.lines):
        if body is None:
            unreadable = True
            continue
        checked += 1
        try:
            request_parser.validate(body)
        except InvalidRequestError as err:
            failed += 1
            print(f"{where}: ERROR {err}", file=out)
        else:
            if not args.quiet:
                print(f"{where}: OK", file=out)
    print(f"{checked} checked, {checked - failed} OK, {failed} failed", file=sys.stderr)
    if unreadable:
        return 2
    return 1 if failed else 0


def _compile(args: argparse.Namespace, out: TextIO) -> int:
    try:
        import numpy as np

        from bidcore.artifact import read_metadata
        from bidcore.compile import build_artifact
    except ImportError as err:
        print(f"bidcore compile: needs bidcore[compile]: {err}", file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("bidcore compile: %(message)s"))
    logger = logging.getLogger("bidcore")
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        metrics = json.loads(Path(args.metrics).read_bytes()) if args.metrics else None
        if metrics is not None and not isinstance(metrics, dict):
            print(f"bidcore compile: {args.metrics}: not a JSON object", file=sys.stderr)
            return 2
        sample = np.load(args.sample, allow_pickle=False) if args.sample else None
        path = build_artifact(
            args.model,
            args.output,
            features=args.features,
            name=args.name,
            version=args.version,
            training_metrics=metrics,
            sample=sample,
            require_compiled=args.require_compiled,
            parallel_comp=args.parallel_comp,
            jobs=args.jobs,
            cache_dir=args.cache_dir,
            overwrite=args.overwrite,
            progress=args.progress,
        )
    except BidcoreError as err:
        print(f"bidcore compile: {err}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:
        print(f"bidcore compile: {err}", file=sys.stderr)
        return 2
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
    metadata = read_metadata(path)
    compiled = "compiled" if metadata.compiled else f"not compiled: {metadata.compiled_refused}"
    print(
        f"{path}: {metadata.name} {metadata.version}, {metadata.num_trees} trees, {compiled}",
        file=out,
    )
    return 0


def _config_schema(args: argparse.Namespace, out: TextIO) -> int:
    print(json.dumps(config_schema(), indent=2), file=out)
    return 0


def _config_check(args: argparse.Namespace, out: TextIO) -> int:
    failed = 0
    for name in args.files:
        try:
            load_config(name)
        except ConfigError as err:
            failed += 1
            # load() names the file itself when it cannot read it; say it once.
            print(f"{name}: {str(err).removeprefix(f'{Path(name)}: ')}", file=out)
        else:
            print(f"OK {name}", file=out)
    return 1 if failed else 0


def _bid(args: argparse.Namespace, out: TextIO) -> int:
    import time

    from bidcore.engine import Engine  # the engine loads models: only this command needs it

    try:
        engine = Engine.load(args.config)
    except BidcoreError as err:
        print(f"bidcore bid: {args.config}: {err}", file=sys.stderr)
        return 2
    answered = 0
    elapsed = 0.0
    for where, body in _requests(args.files, force_lines=args.lines):
        if body is None:
            return 2
        started = time.perf_counter()
        try:
            response = engine.bid(body, now=args.now)
        except InvalidRequestError as err:
            elapsed += time.perf_counter() - started
            if not args.quiet:
                print(f"{where}: invalid: {err}", file=out)
            continue
        elapsed += time.perf_counter() - started
        answered += 1
        if not args.quiet:
            print(response.decode() if response is not None else f"{where}: no bid", file=out)
    counters = engine.counters()
    requests, bids = counters["requests"], counters["bids"]
    reasons = sorted(
        ((n, r) for r, n in counters["no_bids"].items() if n), key=lambda item: (-item[0], item[1])
    )
    share = bids / answered if answered else 0.0
    per_request = elapsed / requests * 1e6 if requests else 0.0
    print(
        f"{requests} requests, {answered} valid, {bids} bids ({share:.1%} of valid); "
        f"{per_request:.1f} us per request from Python",
        file=sys.stderr,
    )
    if reasons:
        top = ", ".join(f"{r} {n}" for n, r in reasons[:8])
        print(f"no-bid reasons: {top}", file=sys.stderr)
    return 0


def _add_log_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    log = commands.add_parser(
        "log",
        help="the decision log: print the JSON Schema of its records",
        description="Work with the decision log (bidcore.decisionlog).",
    )
    actions = log.add_subparsers(required=True, metavar="ACTION")
    schema = actions.add_parser(
        "schema",
        help="print the JSON Schema of a decision log record",
        description="Print the JSON Schema of a decision log record (decisions and notices), "
        "exactly as bidcore/schemas/decision-vN.json publishes it.",
    )
    schema.set_defaults(run=_log_schema)


def _log_schema(args: argparse.Namespace, out: TextIO) -> int:
    from bidcore.decisionlog.schema import schema_text

    out.write(schema_text())
    return 0


def _add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the bidder over HTTP (the bundled demo bidder by default)",
        description="Serve POST /openrtb2/bid, the win/bill/loss notices, /metrics, /healthz, "
        "/readyz and POST /admin/reload under uvicorn or granian, one engine per worker. "
        "SIGHUP or /admin/reload (loopback only) reloads the config and its models; a reload "
        "that fails keeps the running engine. Without --config: the bundled demo bidder.",
    )
    serve.add_argument("--config", metavar="PATH", help="bidder config (default: the demo)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")
    serve.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes")
    serve.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    serve.add_argument(
        "--log-dir", metavar="DIR", help="decision-log directory (default: ./bidcore-decisions)"
    )
    serve.add_argument("--no-log", action="store_true", help="write no decision log")
    serve.add_argument(
        "--smoke-request",
        metavar="FILE",
        help="a request each new engine must decide before it serves (default: the demo's)",
    )
    serve.add_argument(
        "--offload", action="store_true", help="bid in a thread pool, not on the event loop"
    )
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from bidcore.serve import DEFAULT_LOG_DIR, Settings, serve

    if args.workers < 1:
        print("bidcore serve: --workers must be at least 1", file=sys.stderr)
        return 2
    defaults = Settings()
    settings = Settings(
        config=Path(args.config) if args.config else defaults.config,
        smoke_request=Path(args.smoke_request) if args.smoke_request else defaults.smoke_request,
        log_dir=None if args.no_log else Path(args.log_dir or DEFAULT_LOG_DIR),
        offload=args.offload,
    )
    return serve(
        settings, host=args.host, port=args.port, workers=args.workers, server=args.server, out=out
    )


def _add_replay_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = commands.add_parser(
        "replay",
        help="send bid requests at a running bidder; print bid rate, statuses, latencies",
        description="POST bid requests to a running bidder over keep-alive HTTP/1.1 "
        "connections and print the bid rate, the count of each status and the latency "
        "percentiles. FILEs ending in .jsonl/.ndjson hold one request per line, others one "
        "request; default: the OpenRTB corpus of a source checkout. Without --count or "
        "--duration: one pass over the requests. Exit status 1 if any request got no answer "
        "or a 5xx.",
    )
    replay.add_argument("url", metavar="URL", help="the bidder, e.g. http://127.0.0.1:8080")
    replay.add_argument("files", nargs="*", metavar="FILE", help="requests (.json, .jsonl)")
    replay.add_argument("--rate", type=float, metavar="N", help="requests per second in all")
    replay.add_argument("--concurrency", type=int, default=4, metavar="N", help="connections")
    replay.add_argument("--count", type=int, metavar="N", help="stop after N requests")
    replay.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    replay.add_argument("--gzip", action="store_true", help="send the bodies gzipped")
    replay.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS")
    replay.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    replay.set_defaults(run=_replay)


def _replay(args: argparse.Namespace, out: TextIO) -> int:
    from bidcore.replay import default_corpus, read_requests, replay

    try:
        bodies = read_requests(args.files or [default_corpus()])
    except OSError as err:
        print(f"bidcore replay: {err.filename}: {err.strerror or err}", file=sys.stderr)
        return 2
    try:
        report = replay(
            args.url,
            bodies,
            rate=args.rate,
            concurrency=args.concurrency,
            count=args.count,
            duration=args.duration,
            compress=args.gzip,
            timeout=args.timeout,
            progress=args.progress,
        )
    except ValueError as err:
        print(f"bidcore replay: {err}", file=sys.stderr)
        return 2
    print(report.summary(), file=out)
    return 1 if report.failed else 0


def _add_monitor_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    monitor = commands.add_parser(
        "monitor",
        help="print the drift (PSI) of a bidder's models, per model and feature",
        description="Print the population stability index of each model's score and main "
        "features against the reference histograms of its artifact (< 0.1 stable, 0.1-0.25 "
        "moderate, > 0.25 significant): read from a running bidder's /metrics (URL: "
        "host:port or a full URL), or with --config computed offline by running that bidder "
        "over the requests of the files.",
    )
    monitor.add_argument(
        "sources", nargs="+", metavar="URL_OR_FILE", help="the bidder's URL; with --config, files"
    )
    monitor.add_argument(
        "--config", metavar="CONFIG", help="run this bidder configuration over the files"
    )
    monitor.add_argument("--lines", action="store_true", help="read every file as JSON lines")
    monitor.add_argument("--now", type=float, help="the requests' time (seconds since the epoch)")
    monitor.add_argument(
        "--fail-above", type=float, metavar="PSI", help="exit with status 1 if a PSI is above"
    )
    monitor.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a URL")
    monitor.set_defaults(run=_monitor)


def _monitor(args: argparse.Namespace, out: TextIO) -> int:
    from bidcore import monitoring
    from bidcore.engine import Engine

    if args.config is None:
        if len(args.sources) != 1:
            print("bidcore monitor: give one URL, or --config and request files", file=sys.stderr)
            return 2
        try:
            rows = monitoring.scrape(args.sources[0], timeout=args.timeout)
        except ImportError as err:
            print(f"bidcore monitor: needs bidcore[serve]: {err}", file=sys.stderr)
            return 2
        except (OSError, ValueError) as err:
            print(f"bidcore monitor: cannot read {args.sources[0]}: {err}", file=sys.stderr)
            return 2
        if not rows:
            print("bidcore monitor: no bidcore_model_psi series (no monitored model has "
                  "seen traffic lately)", file=sys.stderr)  # fmt: skip
    else:
        try:
            engine = Engine.load(args.config)
        except BidcoreError as err:
            print(f"bidcore monitor: {args.config}: {err}", file=sys.stderr)
            return 2
        requests = invalid = 0
        for _, body in _requests(args.sources, force_lines=args.lines):
            if body is None:
                return 2
            requests += 1
            try:
                engine.bid(body, now=args.now)
            except InvalidRequestError:
                invalid += 1
        print(f"{requests} requests, {invalid} invalid", file=sys.stderr)
        rows = monitoring.drift_rows(monitoring.drift(engine))
    print(monitoring.format_drift(rows), file=out)
    if args.fail_above is not None and any(row.psi > args.fail_above for row in rows):
        return 1
    return 0


def _requests(files: Sequence[str], *, force_lines: bool) -> Iterator[tuple[str, bytes | None]]:
    """``(location, body)`` for every request in the files, in order; ``(file, None)`` (after
    saying why on stderr) for a file that cannot be read."""
    for name in files:
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as err:
            print(f"bidcore validate: {name}: {err.strerror or err}", file=sys.stderr)
            yield name, None
            continue
        if name == "-" or force_lines or Path(name).suffix in _LINE_SUFFIXES:
            for number, line in enumerate(data.splitlines(), start=1):
                if line.strip():
                    yield f"{name}:{number}", line
        else:
            yield name, data


def _add_experiments_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    experiments = commands.add_parser(
        "experiments",
        help="experiment assignment of given ids, and the analysis of decision logs",
        description="Experiments (bidcore.experiments): where ids land, and how arms did.",
    )
    actions = experiments.add_subparsers(required=True, metavar="ACTION")
    assign = actions.add_parser(
        "assign",
        help="print the experiment and arm of each id in every layer",
        description="For each id, one line per layer: layer, experiment, arm (or - when the id "
        "is in no experiment or past its coverage) and bucket, as the engine and GrowthBook's "
        "SDKs assign it. Exit status 2 if the layers cannot be read.",
    )
    assign.add_argument("layers", metavar="CONFIG", help="a config with an [experiments] table")
    assign.add_argument("ids", nargs="+", metavar="ID", help="unit ids (user ids, ifas, ...)")
    assign.set_defaults(run=_experiments_assign)
    report = actions.add_parser(
        "report",
        help="analyse decision logs per arm: table and charts",
        description="Read decision logs (files or directories), analyse each experiment "
        "(per-arm rates with delta-method intervals, sample-ratio mismatch, the always-valid "
        "sequential test, guardrails), print the table and write a PNG chart per metric. Exit "
        "status 1 if no decision carries an arm, 2 if the logs cannot be read.",
    )
    report.add_argument("logs", nargs="+", metavar="LOG", help="decision log files or dirs")
    report.add_argument("-o", "--output", required=True, metavar="DIR", help="where charts go")
    report.add_argument(
        "--experiment",
        metavar="KEY",
        help="the experiment to analyse, by key (default: every experiment, each in DIR/KEY)",
    )
    report.add_argument(
        "--control", help="the control arm (default: control, else the first by name)"
    )
    report.set_defaults(run=_experiments_report)


def _experiments_assign(args: argparse.Namespace, out: TextIO) -> int:
    from bidcore.experiments import assign, load_layers

    try:
        layers = load_layers(args.layers)
    except (OSError, ConfigError) as err:
        print(f"bidcore experiments assign: {err}", file=sys.stderr)
        return 2
    for unit in args.ids:
        for layer in layers:
            a = assign(unit, layer)
            if a is None:
                out.write(f"{unit}\t{layer.name}\t-\t-\t-\n")
            else:
                arm = a.arm if a.arm is not None else "-"
                out.write(f"{unit}\t{layer.name}\t{a.experiment}\t{arm}\t{a.bucket}\n")
    return 0


def _experiments_report(args: argparse.Namespace, out: TextIO) -> int:
    from bidcore.experiments.report import main_report

    return main_report(
        args.logs, args.output, experiment=args.experiment, control=args.control, stdout=out
    )


if __name__ == "__main__":
    sys.exit(main())
