"""Comparing two benchmark documents case by case (e.g. x86_64 against aarch64).

    a, b = load_document("x86_64/search.json"), load_document("aarch64/search.json")
    comparison = compare_documents(a, b)
    print(comparison.markdown())
    comparison.plot("compare.png")          # needs matplotlib (the `bench` extra)

Records are matched by their case key (``report.CASE_KEYS``: the same backend, sizes and mode
on both sides). For every matched case the comparison gives the ratio of each latency
percentile and of the throughput, oriented so that a ratio above 1 means *A is faster*, and
names the faster side. Cases present on one side only are listed, not dropped silently. A side
that ran under emulation (qemu) is flagged in every output: its timings describe the emulator,
not the hardware, so ratios involving it are not performance comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synapse_mojo.errors import InvalidInputError, SynapseError

from .report import CASE_KEYS, case_key, machine_summary

#: Metrics compared per suite: (field, header, lower_is_better).
METRICS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "search": (
        ("p50_ms", "p50", True),
        ("p95_ms", "p95", True),
        ("p99_ms", "p99", True),
        ("qps", "queries/s", False),
    ),
    "router": (
        ("p50_ms", "p50", True),
        ("p95_ms", "p95", True),
        ("p99_ms", "p99", True),
        ("msgs_per_s", "msgs/s", False),
    ),
}

#: The throughput field per suite (the plot's second panel).
THROUGHPUT: dict[str, str] = {"search": "qps", "router": "msgs_per_s"}

#: Ratios within this factor of 1 count as a tie ("≈") in the "faster" column.
TIE = 1.05


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One input document, with the label used in every output."""

    label: str
    path: str
    machine: dict[str, Any]

    @property
    def emulated(self) -> bool:
        return bool(self.machine.get("emulated"))


@dataclass(frozen=True)
class CaseComparison:
    """One case present on both sides. ``ratios[field]`` > 1 means side A is faster."""

    key: tuple[Any, ...]
    a: dict[str, Any]
    b: dict[str, Any]
    ratios: dict[str, float | None]

    def faster(self, metric: str, a_label: str, b_label: str) -> str:
        ratio = self.ratios.get(metric)
        if ratio is None:
            return "-"
        if ratio >= TIE:
            return f"{a_label} ×{ratio:.2f}"
        if ratio <= 1 / TIE:
            return f"{b_label} ×{1 / ratio:.2f}"
        return "≈"


@dataclass
class Comparison:
    """The result of :func:`compare_documents`."""

    suite: str
    a: Side
    b: Side
    cases: list[CaseComparison] = field(default_factory=list)
    only_a: list[dict[str, Any]] = field(default_factory=list)
    only_b: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- summary numbers

    def geomean(self, metric: str) -> float | None:
        """Geometric mean of a metric's ratios over the matched cases (None if there are none)."""
        values = [v for c in self.cases if (v := c.ratios.get(metric))]
        if not values:
            return None
        return math.exp(sum(math.log(v) for v in values) / len(values))

    def warnings(self) -> list[str]:
        out = []
        for side in (self.a, self.b):
            if side.emulated:
                out.append(
                    f"{side.label} ran under EMULATION (qemu): its timings measure the emulator, "
                    f"not {side.machine.get('arch')} hardware. Ratios involving it are NOT "
                    "performance comparisons; they only show that the benchmark ran."
                )
        if not self.cases:
            out.append("No case appears in both documents: nothing to compare.")
        out += [
            f"{d}: a second record for this case was ignored (the first one is used)."
            for d in self.duplicates
        ]
        return out

    # ---------------------------------------------------------------- output

    def markdown(self) -> str:
        """A markdown report: machines, warnings, the per-case table, one-sided cases."""
        a, b = self.a.label, self.b.label
        lines = [f"## {self.suite} benchmark: {a} vs {b}", ""]
        for side in (self.a, self.b):
            lines.append(f"- **{side.label}** ({side.path}): {machine_summary(side.machine)}")
        lines.append("")
        for warning in self.warnings():
            lines += [f"> **WARNING:** {warning}", ""]
        metrics = METRICS[self.suite]
        if self.cases:
            lines.append(
                f"Ratios are {a} relative to {b}: above 1 means {a} is faster "
                f"(latency: {b}/{a}; throughput: {a}/{b})."
            )
            lines.append("")
            p50, thr = "p50_ms", THROUGHPUT[self.suite]
            thr_header = next(h for f, h, _ in metrics if f == thr)
            header = [
                "case",
                f"{a} p50 ms",
                f"{b} p50 ms",
                *[f"{h} ratio" for _, h, _ in metrics],
                f"{a} {thr_header}",
                f"{b} {thr_header}",
                "faster (p50)",
                f"faster ({thr_header})",
            ]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("| --- | " + " | ".join("---:" for _ in header[1:-2]) + " | --- | --- |")
            for c in self.cases:
                row = [
                    describe_case(self.suite, c.key),
                    _num(c.a.get(p50), 4),
                    _num(c.b.get(p50), 4),
                    *[_ratio(c.ratios.get(f)) for f, _, _ in metrics],
                    _num(c.a.get(thr), 1),
                    _num(c.b.get(thr), 1),
                    c.faster(p50, a, b),
                    c.faster(thr, a, b),
                ]
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
            means = [
                f"{h} {_ratio(self.geomean(f))}"
                for f, h, _ in metrics
                if self.geomean(f) is not None
            ]
            lines.append(
                f"Geometric mean of the ratios over {len(self.cases)} case(s): " + ", ".join(means)
            )
            lines.append("")
        for side, records in ((self.a, self.only_a), (self.b, self.only_b)):
            if records:
                lines.append(f"Only in {side.label} ({len(records)} case(s), not compared):")
                lines += [
                    f"- {describe_case(self.suite, case_key(self.suite, r))}" for r in records
                ]
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def plot(self, path: str | Path) -> Path:
        """A PNG with one horizontal bar per case: the p50 and throughput ratios (log scale)."""
        plt = _pyplot()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        thr = THROUGHPUT[self.suite]
        labels = [describe_case(self.suite, c.key) for c in self.cases]
        height = max(3.0, 0.38 * len(labels) + 1.8)
        fig, axes = plt.subplots(1, 2, figsize=(13, height), sharey=True, squeeze=False)
        y = list(range(len(labels)))
        panels = (("p50_ms", "p50 latency"), (thr, "throughput"))
        for ax, (metric, title) in zip(axes[0], panels, strict=True):
            values = [c.ratios.get(metric) for c in self.cases]
            # Bars grow from 1 (a tie) towards the ratio, on a log scale so that x2 and /2 have
            # the same length; cases without a usable ratio get no bar.
            ax.barh(
                y,
                [v - 1 if v else 0 for v in values],
                left=1.0,
                color=["#2f9e44" if v and v >= 1 else "#e03131" for v in values],
            )
            finite = [v for v in values if v]
            span = max([abs(math.log10(v)) for v in finite] + [math.log10(1.2)]) * 1.15
            ax.set_xscale("log")
            ax.set_xlim(10**-span, 10**span)
            ax.xaxis.set_major_formatter(_ratio_formatter())
            ax.xaxis.set_minor_formatter(_ratio_formatter())
            ax.axvline(1.0, color="black", linewidth=1)
            ax.set_title(f"{title}: {self.a.label} / {self.b.label} speed-up")
            ax.set_xlabel(f"> 1: {self.a.label} faster · < 1: {self.b.label} faster")
            ax.grid(axis="x", which="both", alpha=0.3)
        axes[0][0].set_yticks(y)
        axes[0][0].set_yticklabels(labels, fontsize=8)
        axes[0][0].invert_yaxis()  # first case on top (the axes share y: invert once)
        if not self.cases:
            axes[0][0].text(
                0.5,
                0.5,
                "no common cases",
                ha="center",
                va="center",
                transform=axes[0][0].transAxes,
            )
        a, b = machine_summary(self.a.machine), machine_summary(self.b.machine)
        title = f"{self.suite}: {a}  vs  {b}"
        if self.a.emulated or self.b.emulated:
            title = "EMULATED RUN: ratios are not performance\n" + title
        fig.suptitle(
            title, fontsize=9, color="#c92a2a" if self.a.emulated or self.b.emulated else "black"
        )
        fig.tight_layout()
        fig.savefig(out, dpi=120)
        plt.close(fig)
        return out


# --------------------------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------------------------


def compare_documents(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    label_a: str | None = None,
    label_b: str | None = None,
    path_a: str = "A",
    path_b: str = "B",
) -> Comparison:
    """Matches the records of two validated documents of one suite by case key.

    Labels default to each machine's architecture (with the file name added when both are
    the same architecture). Raises ``InvalidInputError`` when the suites differ; a case that
    appears twice in one document is compared once (the first record) and reported.
    """
    suite = a.get("suite")
    if suite != b.get("suite"):
        raise InvalidInputError(
            f"cannot compare a {a.get('suite')!r} benchmark with a {b.get('suite')!r} one"
        )
    if suite not in CASE_KEYS:
        raise InvalidInputError(f"unknown suite {suite!r}")
    la, lb = _labels(a, b, label_a, label_b, path_a, path_b)
    result = Comparison(
        suite,
        Side(la, path_a, a.get("machine", {})),
        Side(lb, path_b, b.get("machine", {})),
    )
    by_key_a = _index(suite, a, result.a.label, result.duplicates)
    by_key_b = _index(suite, b, result.b.label, result.duplicates)
    for key, rec_a in by_key_a.items():
        rec_b = by_key_b.get(key)
        if rec_b is None:
            result.only_a.append(rec_a)
            continue
        ratios = {f: _speedup(rec_a.get(f), rec_b.get(f), lower) for f, _, lower in METRICS[suite]}
        result.cases.append(CaseComparison(key, rec_a, rec_b, ratios))
    result.only_b = [r for k, r in by_key_b.items() if k not in by_key_a]
    return result


def describe_case(suite: str, key: tuple[Any, ...]) -> str:
    """A short human label for a case key, e.g. ``mojo-f32 N=100,000 d=384 k=10 batch×64``."""
    fields = dict(zip(CASE_KEYS[suite], key, strict=False))  # a short key names fewer fields
    parts = [str(fields.get("backend"))]
    if suite == "search":
        if fields.get("n") is not None:
            parts.append(f"N={fields['n']:,}")
        parts += [f"d={fields.get('dim')}", f"k={fields.get('k')}"]
    elif fields.get("messages") is not None:
        parts.append(f"{fields['messages']:,} msgs")
    mode = fields.get("mode")
    batch = fields.get("batch_size")
    parts.append(f"batch×{batch}" if mode == "batch" else str(mode))
    return " ".join(parts)


def _labels(
    a: dict[str, Any], b: dict[str, Any], la: str | None, lb: str | None, pa: str, pb: str
) -> tuple[str, str]:
    arch_a = str(a.get("machine", {}).get("arch") or "A")
    arch_b = str(b.get("machine", {}).get("arch") or "B")
    if la is None:
        la = arch_a if arch_a != arch_b else f"{arch_a} ({Path(pa).name})"
    if lb is None:
        lb = arch_b if arch_a != arch_b else f"{arch_b} ({Path(pb).name})"
    if la == lb:
        la, lb = f"{la} [A]", f"{lb} [B]"
    return la, lb


def _index(
    suite: str, doc: dict[str, Any], label: str, duplicates: list[str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in doc.get("records", []):
        key = case_key(suite, record)
        if key in out:
            duplicates.append(f"{label}: {describe_case(suite, key)}")
            continue
        out[key] = record
    return out


def _speedup(a: Any, b: Any, lower_is_better: bool) -> float | None:
    """How many times faster A is than B for one metric (None when either value is unusable)."""
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return None
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0 or b <= 0:
        return None
    return b / a if lower_is_better else a / b


def _num(value: Any, digits: int) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:g}×")


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SynapseError(
            "the comparison plot needs matplotlib: uv sync --extra bench "
            "(or pip install 'synapse-mojo[bench]'); the markdown report works without it"
        ) from exc
    return plt
