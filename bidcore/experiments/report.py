"""The experiment report: a Markdown summary and a PNG chart per metric, with intervals.

:func:`write_report` turns an :class:`~bidcore.experiments.analysis.Analysis` into Markdown (the
recommendation and its reasons, the sample-ratio test, a table with a row per arm and a table of
differences with the control) and writes ``report.md`` and one chart per metric into a
directory: on the left each arm's value with its 95% interval, on the right each treatment's
difference with the control, with the fixed-horizon interval and the wider always-valid one.
:func:`main_report` is ``bidcore experiments report LOG...``: it reads decision-log files and
reports every experiment they hold (by experiment key, as in the decisions' ``arms``).

Charts are drawn by matplotlib's Agg canvas on a :class:`matplotlib.figure.Figure` (no pyplot,
no global backend), so the report works without a display and in threads.

>>> import tempfile
>>> from bidcore.experiments.analysis import UnitTable, analyze_units
>>> rng = np.random.default_rng(1)
>>> arm = rng.choice(["control", "treatment"], size=2000)
>>> table = UnitTable.from_arrays(arm, requests=np.ones(arm.size),
...                               bid_requests=rng.binomial(1, 0.6, arm.size))
>>> with tempfile.TemporaryDirectory() as out:
...     text = write_report(analyze_units(table), out)
...     sorted(p.name for p in Path(out).iterdir())
['bid_rate.png', 'report.md']
>>> print(text.splitlines()[0])
## Experiment: continue
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

import msgspec
import numpy as np
import numpy.typing as npt

from bidcore.decisionlog import read
from bidcore.experiments.analysis import Analysis, Metric, analyze, experiments
from bidcore.experiments.analysis.units import AnyRecord

__all__ = ["main_report", "markdown", "write_report"]

_KEY = re.compile(r"[A-Za-z0-9_.-]+")  # an experiment key, and so a safe directory name


def markdown(analysis: Analysis) -> str:
    """The report's Markdown: recommendation, SRM, notes, a row per arm, the differences."""
    title = f"`{analysis.experiment}`" if analysis.experiment else ""
    lines = [f"## Experiment{' ' + title if title else ''}: {analysis.recommendation.action}", ""]
    lines += [f"- {reason}" for reason in analysis.recommendation.reasons]
    srm = analysis.srm
    shares = ", ".join(
        f"{arm} {obs} (expected {exp:.0f})"
        for arm, obs, exp in zip(srm.arms, srm.observed, srm.expected, strict=True)
    )
    verdict = "**sample ratio mismatch**" if srm.flagged else "ok"
    lines.append(f"- sample ratio: {verdict}, chi-square {srm.chi2:.3g}, p = {srm.p_value:.3g}")
    lines.append(f"  ({shares})")
    lines += [f"- {note}" for note in analysis.notes]
    level = f"{1 - analysis.alpha:.0%}"

    currency = f" ({analysis.currency})" if analysis.currency else ""
    header = ["arm", "units", "requests", f"spend{currency}", "p99 latency (us)"]
    header += [m.label for m in analysis.metrics]
    lines += ["", f"Per arm, with {level} intervals:", "", _row(header), _rule(len(header))]
    for arm in analysis.arms.values():
        cells = [
            f"{arm.arm}{' (control)' if arm.arm == analysis.control else ''}",
            str(arm.units),
            str(arm.requests),
            _num(arm.spend),
            _num(arm.latency_p99_ns / 1e3),
        ]
        for metric in analysis.metrics:
            e = arm.metrics[metric.name]
            cells.append(f"{_num(e.value)} [{_num(e.low)}, {_num(e.high)}]")
        lines.append(_row(cells))

    if analysis.comparisons:
        header = [
            "metric",
            "arm",
            f"difference [{level}]",
            f"lift [{level}]",
            "p",
            f"always-valid p [{level} sequence]",
            "CUPED",
        ]
        lines += ["", f"Against {analysis.control}:", "", _row(header), _rule(len(header))]
        for c in analysis.comparisons:
            d, lift, s = c.difference.diff, c.difference.lift, c.sequential
            cuped = f"-{c.variance_reduction:.0%} variance" if c.cuped else ""
            lines.append(
                _row(
                    [
                        c.metric.label,
                        c.arm,
                        f"{_num(d.value)} [{_num(d.low)}, {_num(d.high)}]",
                        f"{_pct(lift.value)} [{_pct(lift.low)}, {_pct(lift.high)}]",
                        _p(c.difference.p_value),
                        f"{_p(s.p_value)} [{_num(s.low)}, {_num(s.high)}]",
                        cuped,
                    ]
                )
            )
    return "\n".join(lines) + "\n"


def write_report(analysis: Analysis, out_dir: str | os.PathLike[str]) -> str:
    """Write ``report.md`` and ``<metric>.png`` for each metric into ``out_dir`` (created if
    needed); returns the Markdown, which links the charts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(analysis)
    charts = []
    for metric in analysis.metrics:
        path = out / f"{metric.name}.png"
        _chart(analysis, metric, path)
        charts.append(f"![{metric.label}]({path.name})")
    text += "\n" + "\n".join(charts) + "\n" if charts else ""
    (out / "report.md").write_text(text, encoding="utf-8")
    return text


def main_report(
    paths: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    experiment: str | None = None,
    control: str | None = None,
    weights: Mapping[str, float] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``bidcore experiments report LOG...``: read the log files (or directories), analyse
    the experiment whose key is ``experiment`` (default: every experiment in the decisions,
    each in ``out_dir/<key>`` when there are several), print the Markdown and write the
    charts. Returns the exit status: 0, 1 when the logs hold no experiment, 2 when they cannot
    be read or analysed (or a key found in them cannot name a directory)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    records: list[AnyRecord] = []
    try:
        for path in paths:
            records.extend(read(path))
    except (OSError, ValueError, msgspec.MsgspecError) as err:
        print(f"bidcore experiments report: {err}", file=stderr)
        return 2
    names = [experiment] if experiment is not None else experiments(records)
    if not names:
        print("bidcore experiments report: no decision carries an experiment arm", file=stderr)
        return 1
    unsafe = [n for n in names if not _KEY.fullmatch(n) or n in (".", "..")]
    if len(names) > 1 and unsafe:  # each goes to a directory of its name
        print(f"bidcore experiments report: not an experiment key: {unsafe[0]!r}", file=stderr)
        return 2
    for name in names:
        try:
            analysis = analyze(records, experiment=name, control=control, weights=weights)
        except ValueError as err:
            print(f"bidcore experiments report: experiment {name}: {err}", file=stderr)
            return 2
        target = Path(out_dir) if len(names) == 1 else Path(out_dir) / name
        print(write_report(analysis, target), file=stdout)
    return 0


def _chart(analysis: Analysis, metric: Metric, path: Path) -> None:
    from matplotlib.figure import Figure  # an optional dependency, needed only here

    figure = Figure(figsize=(9.0, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2)
    names = list(analysis.arms)
    values = [analysis.arms[a].metrics[metric.name] for a in names]
    x = np.arange(len(names))
    centre = np.array([e.value for e in values])
    errors = np.array([[e.value - e.low for e in values], [e.high - e.value for e in values]])
    left.errorbar(x, centre, yerr=_finite(errors), fmt="o", capsize=6, color="tab:blue")
    left.set_xticks(x, names)
    left.set_title(f"{metric.label} per arm ({1 - analysis.alpha:.0%} interval)")
    left.grid(axis="y", alpha=0.3)

    compared = [c for c in analysis.comparisons if c.metric.name == metric.name]
    for i, c in enumerate(compared):
        d, s = c.difference.diff, c.sequential
        right.plot([s.low, s.high], [i, i], color="tab:orange", lw=2, label="always valid")
        right.plot([d.low, d.high], [i, i], color="tab:blue", lw=6, alpha=0.7, label="fixed n")
        right.plot([d.value], [i], "o", color="black")
    right.axvline(0.0, color="grey", lw=1)
    right.set_yticks(range(len(compared)), [c.arm for c in compared])
    right.set_ylim(-0.8, max(len(compared), 1) - 0.2)
    right.set_title(f"difference with {analysis.control}")
    if compared:
        handles, labels = right.get_legend_handles_labels()
        right.legend(handles[:2], labels[:2], loc="lower right", fontsize="small")
    right.grid(axis="x", alpha=0.3)
    figure.savefig(path, format="png", dpi=100)


def _finite(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.where(np.isfinite(values), values, 0.0)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _rule(n: int) -> str:
    return "|" + "---|" * n


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x:.4g}"


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:+.2%}"


def _p(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.3g}"
