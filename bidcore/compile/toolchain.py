"""The build toolchain: versions, the tested combination, and what the native code prints.

TL2cgen 1.0.0 embeds its own Treelite (4.1.2) and receives models from the installed Treelite
(4.8.1) serialized; on every :func:`tl2cgen.generate_c_code` the embedded Treelite says so::

    [..] serializer.cc:202: The model you are loading originated from a newer Treelite version;
    some functionalities may be unavailable.
    Currently running Treelite version 4.1.2
    The model checkpoint was generated from Treelite version 4.8.1

It is neither a Python warning nor a ``logging`` record: the embedded Treelite writes it with C++
straight to file descriptor 2. TL2cgen's own messages ("Parallel compilation enabled ...") come
through a ctypes callback that calls ``print`` (standard output), and native warnings through one
that calls ``warnings.warn`` (which ``filterwarnings = error`` would turn into an exception).
:func:`native_output` captures all three around a call and hands them to the ``bidcore.compile``
logger: the version message at DEBUG when the versions are the tested combination, WARNING
otherwise.

>>> TESTED_TOOLCHAIN["tl2cgen"], TESTED_TOOLCHAIN["tl2cgen_treelite"]
('1.0.0', '4.1.2')
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import Final

import lightgbm
import tl2cgen
import treelite

from bidcore.artifact import Toolchain

__all__ = ["COMPILER", "TESTED_TOOLCHAIN", "compiler_target", "native_output", "toolchain"]

log = logging.getLogger("bidcore.compile")

COMPILER: Final = "gcc"

TESTED_TOOLCHAIN: Final = {
    "lightgbm": "4.7.0",
    "treelite": "4.8.1",
    "tl2cgen": "1.0.0",
    "tl2cgen_treelite": "4.1.2",
    "numpy": "2.4.6",
    "gcc": "12.2.0",
}
"""The combination the agreement checks and tests ran on (``tl2cgen_treelite`` is the Treelite
TL2cgen embeds). Other versions still build, behind the same agreement check, with a warning."""

_VERSION_MESSAGE = re.compile(
    r"originated from a newer Treelite version.*?"
    r"Currently running Treelite version (?P<running>\S+)\s+"
    r"The model checkpoint was generated from Treelite version (?P<checkpoint>\S+)",
    re.DOTALL,
)


def toolchain() -> Toolchain:
    """The installed versions (``gcc`` is ``""`` if there is no gcc)."""
    return Toolchain(
        lightgbm=lightgbm.__version__,
        treelite=treelite.__version__,
        tl2cgen=str(tl2cgen.__version__),
        gcc=_gcc_query("-dumpfullversion"),
    )


def compiler_target() -> str:
    """gcc's target triple (``x86_64-linux-gnu``), part of the cache key."""
    return _gcc_query("-dumpmachine")


@functools.cache
def _gcc_query(flag: str) -> str:
    try:
        done = subprocess.run(
            [COMPILER, flag], capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def warn_if_untested(found: Toolchain) -> None:
    """Log a warning, once per process, if the toolchain is not the tested combination."""
    versions = {
        "lightgbm": found.lightgbm,
        "treelite": found.treelite,
        "tl2cgen": found.tl2cgen,
    }
    untested = {k: v for k, v in versions.items() if v != TESTED_TOOLCHAIN[k]}
    if untested:
        _warn_once(
            "untested toolchain: "
            + ", ".join(f"{k} {v} (tested {TESTED_TOOLCHAIN[k]})" for k, v in untested.items())
            + "; every compiled library is still checked against LightGBM"
        )


@functools.cache
def _warn_once(message: str) -> None:
    log.warning(message)


@contextlib.contextmanager
def native_output(what: str) -> Iterator[None]:
    """Capture standard output, file descriptor 2 and Python warnings while the block runs,
    then log them as coming from ``what``.

    Not thread-safe: descriptor 2 and ``sys.stdout`` belong to the whole process, so anything
    another thread prints meanwhile is captured (and logged) too.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    printed = io.StringIO()
    with (
        tempfile.TemporaryFile() as native,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        saved = os.dup(2)
        try:
            os.dup2(native.fileno(), 2)
            with contextlib.redirect_stdout(printed):
                yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            native.seek(0)
            text = printed.getvalue() + native.read().decode("utf-8", "replace")
            _forward(what, text, [str(w.message) for w in caught])


def _forward(what: str, text: str, warned: list[str]) -> None:
    match = _VERSION_MESSAGE.search(text)
    if match:
        pair = (match["running"], match["checkpoint"])
        tested = (TESTED_TOOLCHAIN["tl2cgen_treelite"], TESTED_TOOLCHAIN["treelite"])
        level = logging.DEBUG if pair == tested else logging.WARNING
        log.log(
            level,
            "%s: TL2cgen's embedded Treelite %s read a Treelite %s model (%s)",
            what,
            *pair,
            "the tested combination" if pair == tested else "untested",
        )
        line_start = text.rfind("\n", 0, match.start()) + 1
        text = text[:line_start] + text[match.end() :]
    for line in text.splitlines():
        if line.strip():
            log.debug("%s: %s", what, line.strip())
    for message in warned:
        log.warning("%s: %s", what, message)
