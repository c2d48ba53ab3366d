"""PNG plots of benchmark documents (matplotlib from the ``bench`` extra, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synapse_mojo.errors import SynapseError

#: One colour per backend across every plot, so figures can be compared at a glance.
COLOURS = {
    "mojo-f32": "#e8590c",
    "mojo-int8": "#f59f00",
    "numpy": "#1c7ed6",
    "python": "#868e96",
    "faiss-flat": "#2f9e44",
    "faiss-sq8": "#8ce99a",
    "usearch-f32": "#7048e8",
    "usearch-i8": "#b197fc",
}


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SynapseError(
            "plots need matplotlib: uv sync --extra bench (or pip install 'synapse-mojo[bench]')"
        ) from exc
    return plt


def plot_search(doc: dict[str, Any], out_dir: str | Path, prefix: str = "search") -> list[Path]:
    """latency vs N per backend (one panel per dimension), and % of memory bandwidth."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = [r for r in doc["records"] if r.get("p50_ms") is not None]
    dims = sorted({r["dim"] for r in records})
    backends = [b for b in COLOURS if any(r["backend"] == b for r in records)]
    paths = []
    machine = doc["machine"]
    title = f"{machine.get('arch')} · {machine.get('cpu_model')} · {machine.get('cores')} cores"

    fig, axes = plt.subplots(
        1, max(1, len(dims)), figsize=(6 * max(1, len(dims)), 4.5), squeeze=False
    )
    for ax, dim in zip(axes[0], dims, strict=False):  # one empty panel when there are no dims
        for backend in backends:
            pts = sorted(
                (r["n"], r["p50_ms"], r.get("extrapolated"))
                for r in records
                if r["backend"] == backend and r["dim"] == dim and r["mode"] == "single"
            )
            if not pts:
                continue
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker="o",
                label=backend,
                color=COLOURS.get(backend),
                linestyle="--" if any(p[2] for p in pts) else "-",
            )
        bw = machine.get("bandwidth_gbps")
        if bw:
            ns = sorted({r["n"] for r in records if r["dim"] == dim})
            ax.plot(
                ns,
                [n * dim * 4 / (bw * 1e9) * 1e3 for n in ns],
                color="black",
                linewidth=1,
                linestyle=":",
                label="f32 bandwidth limit",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("patterns (N)")
        ax.set_ylabel("single-query p50 latency (ms)")
        ax.set_title(f"d = {dim}, k = {records[0]['k']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Exact top-k latency (dashed: extrapolated) — {title}", fontsize=10)
    fig.tight_layout()
    path = out / f"{prefix}-latency.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    paths.append(path)

    largest = max((r["n"] for r in records), default=0)
    rows = [
        r for r in records if r["n"] == largest and r["mode"] == "single" and r.get("pct_bandwidth")
    ]
    if rows:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        labels = [f"{r['backend']}\nd={r['dim']}" for r in rows]
        ax.bar(
            range(len(rows)),
            [r["pct_bandwidth"] for r in rows],
            color=[COLOURS.get(r["backend"], "grey") for r in rows],
        )
        ax.axhline(100, color="black", linewidth=1, linestyle=":")
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("% of streaming read bandwidth")
        ax.set_title(
            f"Bytes scanned per second at N={largest:,} (single query) — {title}", fontsize=9
        )
        fig.tight_layout()
        path = out / f"{prefix}-bandwidth.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)

    batch = [r for r in records if r["mode"] == "batch" and r["n"] == largest]
    if batch:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.bar(
            range(len(batch)),
            [r["qps"] for r in batch],
            color=[COLOURS.get(r["backend"], "grey") for r in batch],
        )
        ax.set_xticks(range(len(batch)))
        ax.set_xticklabels([f"{r['backend']}\nd={r['dim']}" for r in batch], fontsize=7)
        ax.set_ylabel(f"queries/s (batches of {batch[0]['batch_size']})")
        ax.set_title(f"Batch throughput at N={largest:,} — {title}", fontsize=9)
        fig.tight_layout()
        path = out / f"{prefix}-batch.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths
