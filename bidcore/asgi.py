"""bidcore over HTTP: a raw ASGI 3 application around an :class:`~bidcore.Engine`.

No web framework: a bid costs a few microseconds of native work, so the routing, header
handling and counting around it are a dictionary lookup and a loop over the headers.

=======================  =====================================================================
``POST /openrtb2/bid``   the bid request (``content-encoding: gzip`` allowed); 200 with the
                         response JSON, 204 on a no-bid, 400 with the reason for an invalid
                         request or an ``x-openrtb-version`` other than 2.x, 413 above the size
                         cap. Responses carry ``x-openrtb-version: 2.6``.
``GET /openrtb2/win``    win, billing and loss notices (the ``nurl``/``burl``/``lurl`` the
``GET /openrtb2/bill``   exchange calls, macros filled): counted, handed to ``on_notice`` (and a
``GET /openrtb2/loss``   bill's price to the pacer); 204, or 400 for an unfilled macro
                         (``${AUCTION_PRICE}``) or a bad price.
``GET /metrics``         :mod:`bidcore.metrics`: Prometheus text, or OpenMetrics by ``accept``.
``GET /healthz``         200 while the process runs.
``GET /readyz``          200 once an engine is loaded and its smoke bid passed, else 503.
``POST /admin/reload``   reload the config and its models (loopback clients only): 200 with
                         what was loaded, 500 with the reason (the old engine keeps serving).
=======================  =====================================================================

Anything else is 404, or 405 for a known path with the wrong method. Every request is counted
by endpoint and status.

>>> import asyncio, bidcore
>>> from bidcore import demo
>>> from bidcore.asgi import app
>>> bidder = app(bidcore.Engine.load(demo.config_path()))
>>> async def post(body):
...     sent = []
...     scope = {"type": "http", "method": "POST", "path": "/openrtb2/bid", "headers": []}
...     async def receive():
...         return {"type": "http.request", "body": body, "more_body": False}
...     async def send(message):
...         sent.append(message)
...     await bidder(scope, receive, send)
...     return sent[0]["status"], sent[1].get("body", b"")[:25]
>>> asyncio.run(post(demo.sample_request()))
(200, b'{"id":"some-request-id","')
>>> asyncio.run(post(b'{"id":"r1"}'))
(400, b'invalid request: imp: ...')
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import functools
import ipaddress
import json
import logging
import os
import re
import signal
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qsl

from bidcore.budget.ledger import BudgetLedger, NoticeKind
from bidcore.budget.pacer import Pacer
from bidcore.budget.shared import SharedBudgetLedger
from bidcore.engine import Engine
from bidcore.errors import BidcoreError, InvalidRequestError
from bidcore.metrics import BidderMetrics

__all__ = [
    "App",
    "EngineHolder",
    "Notice",
    "NoticeError",
    "ReloadResult",
    "app",
    "parse_notice",
]

log = logging.getLogger("bidcore.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

OPENRTB_VERSION: Final = b"2.6"
DEFAULT_MAX_BODY_BYTES: Final = 262_144  # bidcore.Limits().max_body_bytes
# Any OpenRTB 2.x: the parser reads 2.5 and 2.6 and ignores what it does not know.
_ACCEPTED_VERSION: Final = re.compile(rb"^\s*2(\.\d+){0,2}\s*$")


# --- The engine and its reload ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a load or reload did: ``ok``, what was loaded (``source``, campaign count, model
    ids by role) or why not (``error``), and how long it took."""

    ok: bool
    source: str
    seconds: float
    campaigns: int = 0
    models: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> bytes:
        """The result as a JSON object (the body of ``POST /admin/reload``)."""
        return json.dumps(asdict(self), sort_keys=True).encode() + b"\n"


class EngineHolder:
    """The engine being served, swapped whole on reload.

    ``engine`` is read once per request; :meth:`load` builds a new engine with ``loader``,
    checks it with a smoke decision on ``smoke`` (``Engine.explain``, which counts nothing and
    logs nothing), hands it to each of ``preparers`` (the pacer writes its pacing into it), and
    only then assigns it: one attribute assignment, so a request sees the old engine or the new
    one, and the old engine lives until the last request holding it is done. A failed load (a
    preparer raising included) keeps the engine that was there.

    >>> import bidcore
    >>> from bidcore import demo
    >>> holder = EngineHolder(
    ...     loader=lambda: bidcore.Engine.load(demo.config_path()), smoke=demo.sample_request()
    ... )
    >>> holder.ready, holder.load().ok, holder.ready
    (False, True, True)
    """

    __slots__ = (
        "_async_lock",
        "_lock",
        "_waiters",
        "engine",
        "listeners",
        "loader",
        "preparers",
        "ready",
        "smoke",
        "source",
        "started",
    )

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        loader: Callable[[], Engine] | None = None,
        smoke: bytes | None = None,
        source: str = "",
    ) -> None:
        self.engine: Engine | None = engine
        self.loader = loader
        self.smoke = smoke
        self.source = source
        # An engine handed over ready-made counts as verified by whoever built it.
        self.ready = engine is not None
        # Called with every reload's result (SIGHUP or admin), not with the first load.
        self.listeners: list[Callable[[ReloadResult], None]] = []
        # Called with each new engine before it serves (the first load's too).
        self.preparers: list[Callable[[Engine], None]] = []
        self.started = 0  # reloads started in this process
        self._lock = threading.Lock()  # one load at a time, whoever asks
        self._async_lock = asyncio.Lock()
        self._waiters: list[tuple[int, asyncio.Future[ReloadResult]]] = []

    def load(self) -> ReloadResult:
        """Build, verify and swap in a new engine now (blocking); the result says how it went."""
        started = time.perf_counter()
        if self.loader is None:
            return ReloadResult(False, self.source, 0.0, error="no config to load from")
        with self._lock:
            try:
                engine = self.loader()
                if self.smoke is not None:
                    engine.explain(self.smoke)  # raises if the new engine cannot decide
                for prepare in self.preparers:
                    prepare(engine)
            except Exception as err:  # a reload must never take the process down
                seconds = time.perf_counter() - started
                return ReloadResult(False, self.source, seconds, error=_reason(err))
            self.engine = engine  # the swap
            self.ready = True
        return ReloadResult(
            True,
            self.source,
            time.perf_counter() - started,
            campaigns=len(engine.config.campaigns),
            models=_model_ids(engine),
        )

    async def reload(self) -> ReloadResult:
        """:meth:`load` in a thread (the event loop keeps serving), one at a time; logs a
        failure, tells the listeners and anyone waiting in :meth:`next_reload`."""
        async with self._async_lock:
            self.started += 1
            number = self.started
            result = await asyncio.get_running_loop().run_in_executor(None, self.load)
        if result.ok:
            log.info(
                "reloaded %s in %.3f s: %d campaigns, models %s",
                result.source,
                result.seconds,
                result.campaigns,
                result.models,
            )
        else:
            log.error(
                "reload of %s failed, still serving the previous engine: %s",
                result.source,
                result.error,
            )
        for listener in self.listeners:
            listener(result)
        waiting, self._waiters = self._waiters, []
        for after, future in waiting:
            if number > after and not future.done():
                future.set_result(result)
            elif not future.done():
                self._waiters.append((after, future))
        return result

    def next_reload(self) -> asyncio.Future[ReloadResult]:
        """A future for the result of the next reload to start after this call."""
        future: asyncio.Future[ReloadResult] = asyncio.get_running_loop().create_future()
        self._waiters.append((self.started, future))
        return future


class SighupLatch:
    """A SIGHUP handler for a worker that is still starting: it remembers the signal instead
    of ending the process (the default) or dropping it (``SIG_IGN``), so that the app reloads
    once its own handler is installed. Without it, a reload asked for while one worker of
    several was starting would never reach that worker: it would keep serving the config it
    had read before the change."""

    def __init__(self) -> None:
        self.received = False

    def __call__(self, signum: int, frame: object) -> None:
        self.received = True

    def take(self) -> bool:
        """Whether a SIGHUP came since the last call."""
        received, self.received = self.received, False
        return received


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if isinstance(err, BidcoreError) else f"{type(err).__name__}: {text}"


def _model_ids(engine: Engine) -> dict[str, str]:
    """Each model's ``name@version`` (from its artifact), else its tree count."""
    return {role: model.name or f"{model.num_trees} trees" for role, model in engine.models.items()}


# --- Notices ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notice:
    """A win, billing or loss notice as the exchange filled it.

    Prices are CPM in micros of ``currency`` (the exchange's ``${AUCTION_CURRENCY}``, or the
    bid's currency when absent); ``campaign``, ``creative``, ``imp`` and ``request`` are what
    bidcore put in the notice URL (``c``, ``cr``, ``imp``, ``req``).
    """

    kind: NoticeKind
    received_at: float
    price_micros: int | None = None
    currency: str | None = None
    campaign: str | None = None
    creative: str | None = None
    imp: str | None = None
    request: str | None = None
    loss_reason: int | None = None
    min_to_win_micros: int | None = None
    bid: str | None = None
    """The bid's ledger token (``{bid}``, the ``bid`` parameter): with a budget ledger, the
    notice settles that bid (``docs/budget.md``)."""


class NoticeError(ValueError):
    """A notice bidcore cannot take: an unfilled macro, a price that is not a price."""


_MICROS_LIMIT: Final = 10**15  # a billion currency units, as in bidcore.config
_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")
# `${AUCTION_PRICE}`, and what is left of it after a client's URL handling ate the braces.
_MACRO: Final = re.compile(r"\$\{|\$?\bAUCTION_[A-Z_]+")


def parse_notice(kind: NoticeKind, query: bytes, *, received_at: float | None = None) -> Notice:
    """The notice in a query string; raises :class:`NoticeError` with the reason.

    Win and billing notices need ``price``; a loss notice may carry ``price``, ``reason``
    (``${AUCTION_LOSS}``) and ``min_to_win``.

    >>> n = parse_notice("win", b"c=spring&cr=mrec&imp=1&price=1.234567&currency=EUR")
    >>> n.price_micros, n.currency, n.campaign
    (1234567, 'EUR', 'spring')
    >>> parse_notice("win", b"c=spring&price=${AUCTION_PRICE}")
    Traceback (most recent call last):
    ...
    bidcore.asgi.NoticeError: price: the macro ${AUCTION_PRICE} was not filled
    """
    fields: dict[str, str] = {}
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    except ValueError as err:
        raise NoticeError(f"bad query string: {err}") from None
    for name, value in pairs:
        if _MACRO.search(value):
            raise NoticeError(f"{name}: the macro {value} was not filled")
        fields[name] = value
    price = _optional_micros(fields, "price")
    if price is None and kind != "loss":
        raise NoticeError("price: missing")
    currency = fields.get("currency") or fields.get("cur") or None
    if currency is not None and not _CURRENCY.match(currency):
        raise NoticeError(f"currency: {currency!r} is not a 3-letter upper-case code")
    return Notice(
        kind=kind,
        received_at=time.time() if received_at is None else received_at,
        price_micros=price,
        currency=currency,
        campaign=fields.get("c") or None,
        creative=fields.get("cr") or None,
        imp=fields.get("imp") or None,
        request=fields.get("req") or None,
        bid=fields.get("bid") or None,
        loss_reason=_optional_int(fields, "reason"),
        min_to_win_micros=_optional_micros(fields, "min_to_win"),
    )


def _optional_micros(fields: dict[str, str], name: str) -> int | None:
    text = fields.get(name)
    if text is None or text == "":
        return None
    try:
        amount = Decimal(text.strip())
    except decimal.InvalidOperation:
        raise NoticeError(f"{name}: {text!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise NoticeError(f"{name}: {text!r} is not a price (finite, >= 0)")
    micros = int(amount.scaleb(6).to_integral_value(decimal.ROUND_HALF_EVEN))
    if micros > _MICROS_LIMIT:
        raise NoticeError(f"{name}: {text!r} is out of range")
    return micros


def _optional_int(fields: dict[str, str], name: str) -> int | None:
    text = fields.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit() or len(text) > 9:
        raise NoticeError(f"{name}: {text!r} is not a loss reason code")
    return int(text)


# --- The application -------------------------------------------------------------------------

_TEXT: Final = (b"content-type", b"text/plain; charset=utf-8")
_VERSION_HEADER: Final = (b"x-openrtb-version", OPENRTB_VERSION)

Handler = Callable[["App", Scope, Receive, Send, int], Awaitable[int]]

_Spend = tuple[str | None, str | None, str | None, int]
"""What a bill spent: (campaign, account, currency, CPM price micros); the account is the
campaign's, or its share under an arm, the currency None for the bidder's."""


class App:
    """The ASGI application; build it with :func:`app`."""

    def __init__(
        self,
        holder: EngineHolder,
        *,
        metrics: BidderMetrics | None = None,
        pacer: Pacer | None = None,
        budget: BudgetLedger | None = None,
        on_notice: Callable[[Notice], None] | None = None,
        offload: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        reload_on_sighup: bool = False,
        reload_via_parent: bool = False,
        on_startup: Sequence[Callable[[], None]] = (),
        on_shutdown: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.holder = holder
        self.metrics = metrics if metrics is not None else BidderMetrics()
        if holder.engine is not None:
            self.metrics.track(holder.engine)
        self.on_notice = on_notice
        self.offload = offload
        self.max_body_bytes = max_body_bytes
        self.reload_on_sighup = reload_on_sighup
        self.reload_via_parent = reload_via_parent
        self.on_startup = list(on_startup)
        self.on_shutdown = list(on_shutdown)
        self.pacer = pacer
        if pacer is not None:
            # Paced before it serves: a reloaded engine starts at full throttle otherwise.
            holder.preparers.append(lambda engine: pacer.swap(engine, engine.config))
            self.metrics.registry.register(pacer.collector())
            self.on_startup.append(pacer.start)
            self.on_shutdown.append(pacer.stop)
        self.budget = budget
        if budget is not None:
            holder.preparers.append(lambda engine: budget.swap(engine.config))
            self.metrics.registry.register(budget.collector())
            self.on_startup.append(budget.start)
            self.on_shutdown.append(budget.stop)
        self.notices: dict[str, int] = {"win": 0, "bill": 0, "loss": 0}
        holder.listeners.append(self._reloaded)
        self._sighup_loop: asyncio.AbstractEventLoop | None = None
        self._sighup_before: Any = None
        self._reload_tasks: set[asyncio.Task[ReloadResult]] = set()

    def _reloaded(self, result: ReloadResult) -> None:
        self.metrics.record_reload(result.ok)
        if result.ok and self.holder.engine is not None:
            # Now, not at the next scrape: the engine replaced keeps its counts in the totals.
            self.metrics.track(self.holder.engine)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        received_ns = time.monotonic_ns()  # as early as ASGI lets us see the request
        kind = scope["type"]
        if kind == "http":
            endpoint, status = await self._http(scope, receive, send, received_ns)
            self.metrics.record_response(endpoint, status)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})
            self.metrics.record_response("websocket", 403)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, received_ns: int
    ) -> tuple[str, int]:
        route = _ROUTES.get(scope["path"])
        if route is None:
            return "unknown", await _text(send, 404, "not found")
        method, endpoint, handler = route
        if scope["method"] != method:
            allow = (b"allow", method.encode())
            return endpoint, await _text(send, 405, f"use {method}", extra=[allow])
        try:
            return endpoint, await handler(self, scope, receive, send, received_ns)
        except Exception:
            # Never let a request take the server down; whatever it was is a bidcore bug.
            log.exception("%s %s failed", scope["method"], scope["path"])
            with contextlib.suppress(Exception):
                await _text(send, 500, "internal error")
            return endpoint, 500

    # --- POST /openrtb2/bid ---

    async def _bid(self, scope: Scope, receive: Receive, send: Send, received_ns: int) -> int:
        encoding = b""
        for name, value in scope["headers"]:
            if name == b"content-encoding":
                encoding = value.strip().lower()
            elif name == b"x-openrtb-version" and not _ACCEPTED_VERSION.match(value):
                shown = value.decode("latin-1")[:20]
                return await _text(send, 400, f"x-openrtb-version {shown!r}: bidcore takes 2.x")
        message = await receive()
        body: bytes | None = message.get("body", b"")
        if message.get("more_body", False):
            body = await _read_rest(receive, body or b"", self.max_body_bytes)
        if body is None or len(body) > self.max_body_bytes:
            return await _text(send, 413, f"body above {self.max_body_bytes} bytes")
        if encoding and encoding != b"identity":
            if encoding not in (b"gzip", b"x-gzip"):
                shown = encoding.decode("latin-1")[:20]
                return await _text(send, 415, f"content-encoding {shown!r}: only gzip")
            try:
                body = _gunzip(body, self.max_body_bytes)
            except _BodyTooLargeError:
                return await _text(send, 413, f"body above {self.max_body_bytes} bytes unzipped")
            except (zlib.error, EOFError) as err:
                return await _text(send, 400, f"bad gzip body: {err}")
        engine = self.holder.engine
        if engine is None:
            return await _text(send, 503, "no engine loaded yet")
        try:
            if self.offload:
                call = functools.partial(engine.bid, body, received_ns=received_ns)
                response = await asyncio.get_running_loop().run_in_executor(None, call)
            else:
                # Inline by default: faster, measured (2026-11-22, 2 cores, shared and busy).
                # Through this app in one process: 16 us a request inline, 60-90 us offloaded;
                # the hop to a pool thread and back (a future, a queue, a thread wake-up, the
                # loop's self-pipe) costs several times the 6 us native call, and one event
                # loop gains nothing from the GIL being released meanwhile (more workers use
                # more cores). Over HTTP (benchmarks/serve.py, one core, medians of 3
                # interleaved rounds; inline won every round): uvicorn 11.8k requests/s inline
                # against 10.5k offloaded, p99 4 ms against 49; granian 12.7k against 7.9k,
                # p99 4 ms against 42.
                response = engine.bid(body, received_ns=received_ns)
        except InvalidRequestError as err:
            return await _text(send, 400, f"invalid request: {err}")
        if response is None:
            await send({"type": "http.response.start", "status": 204, "headers": [_VERSION_HEADER]})
            await send({"type": "http.response.body", "body": b""})
            return 204
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(response)),
                    _VERSION_HEADER,
                ],
            }
        )
        await send({"type": "http.response.body", "body": response})
        return 200

    # --- GET /openrtb2/{win,bill,loss} ---

    async def _notice(self, scope: Scope, receive: Receive, send: Send, received_ns: int) -> int:
        kind: NoticeKind = _NOTICE_KINDS[scope["path"]]
        try:
            notice = parse_notice(kind, scope.get("query_string", b""))
        except NoticeError as err:
            self.metrics.record_notice(kind, accepted=False)
            return await _text(send, 400, f"{kind} notice: {err}")
        if self.budget is not None and notice.bid is not None:
            accepted, spend = self._settle(notice)
        else:
            accepted, spend = True, None
            if kind == "bill" and notice.price_micros is not None:
                spend = (notice.campaign, notice.campaign, notice.currency, notice.price_micros)
        self.metrics.record_notice(kind, accepted=accepted)
        if accepted:
            self.notices[kind] += 1
        if spend is not None:
            campaign, account, currency, price_micros = spend
            self.metrics.record_spend(campaign, currency, price_micros)
            if self.pacer is not None:
                self.pacer.record_bill(account, price_micros, currency)
        if self.on_notice is not None:
            self.on_notice(notice)
        # 204 whatever the outcome: the exchange has nothing to do about it.
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return 204

    def _settle(self, notice: Notice) -> tuple[bool, _Spend | None]:
        """A notice for a registered bid, settled by the ledger: whether it was accepted, and
        what it spent, if anything. Only an accepted notice spends, so an exchange's retries
        are counted once."""
        assert self.budget is not None
        assert notice.bid is not None
        settled = self.budget.notice(
            notice.kind,
            notice.bid,
            price_micros=notice.price_micros,
            currency=notice.currency,
            now=notice.received_at,
        )
        # Nanos of the bidder's currency (None) are the micros of a CPM price in it.
        if settled.spent_nanos <= 0:
            return settled.outcome == "accepted", None
        spend = (settled.campaign, settled.account, None, settled.spent_nanos)
        return settled.outcome == "accepted", spend

    # --- GET /metrics, /healthz, /readyz ---

    async def _metrics(self, scope: Scope, receive: Receive, send: Send, received_ns: int) -> int:
        if self.holder.engine is not None:
            self.metrics.track(self.holder.engine)  # a no-op unless it was swapped in by load()
        accept = next((v for k, v in scope["headers"] if k == b"accept"), b"")
        body, content_type = self.metrics.render(accept.decode("latin-1") or None)
        headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return 200

    async def _healthz(self, scope: Scope, receive: Receive, send: Send, received_ns: int) -> int:
        return await _text(send, 200, "ok")

    async def _readyz(self, scope: Scope, receive: Receive, send: Send, received_ns: int) -> int:
        if self.holder.ready:
            return await _text(send, 200, "ready")
        return await _text(send, 503, "no engine loaded yet")

    # --- POST /admin/reload ---

    async def _reload(self, scope: Scope, receive: Receive, send: Send, received_ns: int) -> int:
        if not _is_loopback(scope.get("client")):
            return await _text(send, 403, "reload is allowed from loopback clients only")
        if self.reload_via_parent:
            # Several workers: the serving parent passes SIGHUP to each of them (this one
            # included), so all reload; answer with this worker's result.
            waiting = self.holder.next_reload()
            os.kill(os.getppid(), signal.SIGHUP)
            try:
                result = await asyncio.wait_for(waiting, timeout=120)
            except TimeoutError:
                return await _text(send, 500, "the reload did not reach this worker in 120 s")
        else:
            result = await self.holder.reload()
        status = 200 if result.ok else 500
        body = result.to_json()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return status

    # --- lifespan ---

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.on_startup:
                        hook()
                    if self.reload_on_sighup:
                        self._install_sighup()
                except Exception as err:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": _reason(err)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._remove_sighup()
                for hook in self.on_shutdown:
                    try:
                        hook()
                    except Exception:
                        log.exception("shutdown hook failed")
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _install_sighup(self) -> None:
        loop = asyncio.get_running_loop()
        before = signal.getsignal(signal.SIGHUP)
        try:
            loop.add_signal_handler(signal.SIGHUP, self._sighup)
        except (NotImplementedError, RuntimeError, ValueError) as err:
            # Not the main thread, or no Unix signals: /admin/reload still works.
            log.warning("cannot reload on SIGHUP here: %s", err)
            return
        self._sighup_loop, self._sighup_before = loop, before
        if isinstance(before, SighupLatch) and before.take():
            log.info("a SIGHUP came while starting")
            self._sighup()

    def _remove_sighup(self) -> None:
        if self._sighup_loop is not None:
            self._sighup_loop.remove_signal_handler(signal.SIGHUP)
            # asyncio resets the signal to its default (for SIGHUP: terminate), not to what it
            # was: a server started under nohup (SIGHUP ignored) would die of a later SIGHUP.
            if self._sighup_before is not None:
                signal.signal(signal.SIGHUP, self._sighup_before)
            self._sighup_loop = None

    def _sighup(self) -> None:
        log.info("SIGHUP: reloading %s", self.holder.source)
        task = asyncio.get_running_loop().create_task(self.holder.reload())
        self._reload_tasks.add(task)  # a task nobody references may be collected mid-run
        task.add_done_callback(self._reload_tasks.discard)


_ROUTES: Final[dict[str, tuple[str, str, Handler]]] = {
    "/openrtb2/bid": ("POST", "bid", App._bid),
    "/openrtb2/win": ("GET", "win", App._notice),
    "/openrtb2/bill": ("GET", "bill", App._notice),
    "/openrtb2/loss": ("GET", "loss", App._notice),
    "/metrics": ("GET", "metrics", App._metrics),
    "/healthz": ("GET", "healthz", App._healthz),
    "/readyz": ("GET", "readyz", App._readyz),
    "/admin/reload": ("POST", "reload", App._reload),
}
_NOTICE_KINDS: Final[dict[str, NoticeKind]] = {
    "/openrtb2/win": "win",
    "/openrtb2/bill": "bill",
    "/openrtb2/loss": "loss",
}


def app(
    engine_or_holder: Engine | EngineHolder,
    *,
    metrics: BidderMetrics | None = None,
    pacer: Pacer | None = None,
    budget: BudgetLedger | None = None,
    on_notice: Callable[[Notice], None] | None = None,
    offload: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    reload_on_sighup: bool = False,
    reload_via_parent: bool = False,
    on_startup: Sequence[Callable[[], None]] = (),
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> App:
    """The ASGI application serving an engine (or the engine of a holder, which can reload).

    ``offload=True`` runs each bid in the event loop's thread pool instead of inline (slower:
    the comment in ``App._bid`` says by how much). ``max_body_bytes`` caps the request body,
    before and after gunzip. ``reload_on_sighup`` installs a SIGHUP handler at lifespan
    startup (the main thread's loop only). ``reload_via_parent`` makes ``/admin/reload`` ask
    the parent process to pass SIGHUP to every worker (``bidcore serve --workers N``).
    ``on_startup`` and ``on_shutdown`` run at lifespan startup and shutdown (the decision-log
    writer).

    ``pacer`` paces the campaigns' daily budgets (:class:`bidcore.budget.Pacer`): it is fed
    every accepted bill notice, moved to each reloaded engine before that engine serves,
    started at lifespan startup and stopped at shutdown, and its state is exported at
    ``/metrics`` (``bidcore_pacing_*``). Without one, an engine given whose config has
    ``[pacing] enabled = true`` gets one.

    ``budget`` is the budget ledger the engines were built on (``docs/budget.md``): a notice
    with a ``bid`` parameter settles that bid through it, and only an accepted notice's spend
    is counted and fed to the pacer (a duplicate, unknown or expired one is counted by outcome
    and ignored). It is given each reloaded config, ticked once a second from lifespan startup
    to shutdown, and exported at ``/metrics`` (``bidcore_budget_*``).
    """
    holder = (
        engine_or_holder
        if isinstance(engine_or_holder, EngineHolder)
        else EngineHolder(engine_or_holder)
    )
    engine = holder.engine
    if pacer is None and engine is not None and engine.config.pacing.enabled:
        fleet = budget.fleet_spent_micros if isinstance(budget, SharedBudgetLedger) else None
        pacer = Pacer(engine.config, engine, fleet_spend=fleet)
    return App(
        holder,
        metrics=metrics,
        pacer=pacer,
        budget=budget,
        on_notice=on_notice,
        offload=offload,
        max_body_bytes=max_body_bytes,
        reload_on_sighup=reload_on_sighup,
        reload_via_parent=reload_via_parent,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


# --- HTTP plumbing ---------------------------------------------------------------------------


class _BodyTooLargeError(Exception):
    pass


async def _read_rest(receive: Receive, first: bytes, limit: int) -> bytes | None:
    """The body that began with ``first``, read to its end; None once it passes ``limit``
    bytes. (A body in one message, the usual case, never comes here.)"""
    chunks = [first]
    size = len(first)
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _gunzip(data: bytes, limit: int) -> bytes:
    """A gzip body unzipped, refused past ``limit`` bytes (a zip bomb stops at the cap)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit:
        raise _BodyTooLargeError
    if not inflater.eof:
        raise EOFError("the gzip stream is truncated")
    return out


async def _text(
    send: Send, status: int, text: str, *, extra: Sequence[tuple[bytes, bytes]] = ()
) -> int:
    body = text.encode() + b"\n"
    headers = [_TEXT, (b"content-length", b"%d" % len(body)), _VERSION_HEADER, *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


def _is_loopback(client: Sequence[Any] | None) -> bool:
    if client is None:
        return True  # a Unix socket: local by construction
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False
