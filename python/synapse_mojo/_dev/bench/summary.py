"""Side-by-side ratios of a search benchmark document (the figures the targets speak of)."""

from __future__ import annotations

from typing import Any

from .report import machine_summary, markdown_table


def _index(doc: dict[str, Any]) -> dict[tuple, dict[str, Any]]:
    return {
        (r["backend"], r["n"], r["dim"], r["mode"]): r for r in doc["records"] if r.get("p50_ms")
    }


def search_ratios(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (N, d, mode): Mojo's speed-ups over each other backend, from the same run."""
    idx = _index(doc)
    out = []
    for (backend, n, dim, mode), rec in sorted(
        idx.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][3])
    ):
        if not backend.startswith("mojo"):
            continue
        for other in (
            "numpy",
            "python",
            "faiss-flat",
            "faiss-sq8",
            "usearch-f32",
            "usearch-i8",
            "mojo-f32",
        ):
            peer = idx.get((other, n, dim, mode))
            if peer is None or other == backend:
                continue
            single = mode == "single"
            ratio = peer["p50_ms"] / rec["p50_ms"] if single else rec["qps"] / peer["qps"]
            out.append(
                {
                    "backend": backend,
                    "vs": other,
                    "n": n,
                    "dim": dim,
                    "mode": mode,
                    "speedup": round(ratio, 2),
                    "extrapolated": bool(peer.get("extrapolated")),
                    "recall_at_k": rec.get("recall_at_k"),
                }
            )
    return out


def ratios_markdown(doc: dict[str, Any]) -> str:
    rows = search_ratios(doc)
    if not rows:
        return ""
    lines = [
        "| Mojo backend | vs | N | d | mode | speed-up | recall@k |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        note = " (vs extrapolated)" if r["extrapolated"] else ""
        lines.append(
            f"| {r['backend']} | {r['vs']} | {r['n']:,} | {r['dim']} | {r['mode']} | "
            f"{r['speedup']:.2f}x{note} | {r['recall_at_k']:.4f} |"
        )
    return "\n".join(lines)


def memory_markdown(records: list[dict[str, Any]]) -> str:
    lines = [
        "| storage | N | d | raw f32 MB | built index RSS MB (ratio) | open s "
        "| mapped RSS after 1 search MB (ratio) | mapped RSS after many searches MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in records:
        many = next(
            (
                v
                for k, v in r.items()
                if k.startswith("mapped_rss_after_") and k.endswith("_searches_mb")
            ),
            None,
        )
        lines.append(
            f"| {r['quantization']} | {r['n']:,} | {r['dim']} | {r['raw_f32_mb']:,.0f} | "
            f"{r['built_index_rss_mb']:,.0f} ({r['built_ratio']:.2f}x) | {r['open_seconds']:.3f} | "
            f"{r['mapped_rss_after_first_search_mb']:,.0f} "
            f"({r['mapped_ratio_after_first_search']:.2f}x) | "
            f"{many if many is not None else '-'} |"
        )
    return "\n".join(lines)


def search_markdown(doc: dict[str, Any]) -> str:
    """The whole report of a search benchmark document."""
    md = (
        f"# Search benchmark\n\n{machine_summary(doc['machine'])}\n\n"
        "`% bw`: bytes scanned per second as a share of the best streaming read measured during "
        "the run (for in-cache cases, of that data's own best read).\n\n"
        f"{markdown_table(doc)}\n\n## Mojo speed-ups (same run)\n\n{ratios_markdown(doc)}\n"
    )
    if doc.get("memory"):
        md += "\n## Index memory (fresh processes)\n\n" + memory_markdown(doc["memory"]) + "\n"
    for note in doc.get("notes", []):
        md += f"\n- {note}"
    return md + "\n"
