"""Benchmark documents: creation, validation, JSON and markdown output.

doc = new_document("search", command="synapse-mojo bench search", machine=machine_info())
doc["records"].append({...})
write_document(doc, "results.json")
print(markdown_table(doc))
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from synapse_mojo.errors import InvalidInputError

SCHEMA = "synapse-mojo-bench/1"

#: Fields that identify a case, per suite (records with equal keys are comparable).
CASE_KEYS: dict[str, tuple[str, ...]] = {
    "search": ("backend", "n", "dim", "k", "mode", "batch_size"),
    "router": ("backend", "mode", "batch_size", "messages"),
    "serve": ("path", "transport", "clients"),
    "recall": ("dataset", "backend", "method", "n", "dim", "k"),
}

#: Fields every record of a suite must carry.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "search": (
        "backend",
        "n",
        "dim",
        "k",
        "mode",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "qps",
        "gbps",
        "recall_at_k",
    ),
    "router": ("backend", "mode", "messages", "msgs_per_s", "p50_ms", "p95_ms", "p99_ms", "lost"),
    "serve": (
        "path",
        "transport",
        "clients",
        "calls",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "calls_per_s",
        "errors",
    ),
    "recall": ("dataset", "backend", "method", "n", "dim", "k", "recall_at_k", "p50_ms"),
}

#: Columns of the markdown table, per suite: (field, header, format).
TABLE_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "search": (
        ("backend", "backend", "{}"),
        ("n", "N", "{:,}"),
        ("dim", "d", "{}"),
        ("mode", "mode", "{}"),
        ("batch_size", "batch", "{}"),
        ("p50_ms", "p50 ms", "{:.3f}"),
        ("p95_ms", "p95 ms", "{:.3f}"),
        ("p99_ms", "p99 ms", "{:.3f}"),
        ("qps", "queries/s", "{:,.1f}"),
        ("gbps", "GB/s", "{:.1f}"),
        ("pct_bandwidth", "% bw", "{:.0f}"),
        ("recall_at_k", "recall@k", "{:.4f}"),
        ("errors", "errors", "{}"),
        ("peak_rss_mb", "peak RSS MB", "{:,.0f}"),
    ),
    "router": (
        ("backend", "backend", "{}"),
        ("mode", "mode", "{}"),
        ("batch_size", "batch", "{}"),
        ("messages", "messages", "{:,}"),
        ("msgs_per_s", "msgs/s", "{:,.0f}"),
        ("p50_ms", "p50 ms", "{:.4f}"),
        ("p95_ms", "p95 ms", "{:.4f}"),
        ("p99_ms", "p99 ms", "{:.4f}"),
        ("lost", "lost", "{}"),
    ),
    "serve": (
        ("path", "path", "{}"),
        ("transport", "transport", "{}"),
        ("clients", "clients", "{}"),
        ("calls", "calls", "{}"),
        ("p50_ms", "p50 ms", "{:.2f}"),
        ("p95_ms", "p95 ms", "{:.2f}"),
        ("p99_ms", "p99 ms", "{:.2f}"),
        ("calls_per_s", "calls/s", "{:,.1f}"),
        ("errors", "errors", "{}"),
    ),
    "recall": (
        ("dataset", "dataset", "{}"),
        ("method", "method", "{}"),
        ("n", "N", "{:,}"),
        ("dim", "d", "{}"),
        ("k", "k", "{}"),
        ("recall_at_k", "recall@k", "{:.4f}"),
        ("p50_ms", "p50 ms", "{:.3f}"),
        ("p50_vs_int8_fixed", "p50 / int8-fixed", "{:.2f}x"),
        ("mean_candidates", "candidates (mean)", "{:,.0f}"),
        ("max_candidates", "candidates (max)", "{:,}"),
        ("exact_fallbacks", "f32 fallbacks", "{}"),
    ),
}


def new_document(suite: str, command: str, machine: dict[str, Any]) -> dict[str, Any]:
    if suite not in CASE_KEYS:
        raise InvalidInputError(f"unknown benchmark suite {suite!r}; expected {sorted(CASE_KEYS)}")
    return {
        "schema": SCHEMA,
        "suite": suite,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "machine": machine,
        "records": [],
    }


def validate_document(doc: Any, source: str = "document") -> dict[str, Any]:
    """Checks the schema version, the suite and every record's required fields."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise InvalidInputError(f"{source}: not a {SCHEMA} benchmark document")
    suite = doc.get("suite")
    if not isinstance(suite, str) or suite not in CASE_KEYS:
        raise InvalidInputError(f"{source}: unknown suite {suite!r}")
    if not isinstance(doc.get("machine"), dict) or not isinstance(doc.get("records"), list):
        raise InvalidInputError(f"{source}: needs a 'machine' object and a 'records' list")
    keys = CASE_KEYS[suite]
    for i, record in enumerate(doc["records"]):
        if not isinstance(record, dict):
            raise InvalidInputError(
                f"{source}: record {i} is a {type(record).__name__}, not an object"
            )
        missing = [f for f in REQUIRED_FIELDS[suite] if f not in record]
        if missing:
            raise InvalidInputError(f"{source}: record {i} lacks {missing}")
        for f in keys:
            if not isinstance(record.get(f), (str, int, float, type(None))):
                raise InvalidInputError(
                    f"{source}: record {i}: {f} must be a string or a number, "
                    f"not {type(record[f]).__name__}"
                )
        for f in REQUIRED_FIELDS[suite]:
            value = record[f]
            if (
                f not in keys
                and value is not None
                and (isinstance(value, bool) or not isinstance(value, (int, float)))
            ):
                raise InvalidInputError(
                    f"{source}: record {i}: {f} must be a number or null, not {value!r:.40}"
                )
    return doc


def load_document(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{p}: no such file") from None
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"{p}: not a JSON document (not UTF-8 text; a binary file?)"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{p}: not valid JSON ({exc})") from exc
    except (OSError, RecursionError) as exc:  # a directory, no permission, absurd nesting
        raise InvalidInputError(f"{p}: cannot be read as a benchmark document: {exc}") from exc
    return validate_document(doc, str(p))


def write_document(doc: dict[str, Any], path: str | Path) -> Path:
    validate_document(doc)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return p


def case_key(suite: str, record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record.get(f, 1 if f == "batch_size" else None) for f in CASE_KEYS[suite])


def _cell(record: dict[str, Any], field: str, fmt: str) -> str:
    value = record.get(field)
    if value is None:
        return "-"
    try:
        text = fmt.format(value)
    except (ValueError, TypeError):
        text = str(value)
    if field == "backend" and record.get("extrapolated"):
        text += " (extrapolated)"
    return text


def markdown_table(doc: dict[str, Any], records: Iterable[dict[str, Any]] | None = None) -> str:
    suite = doc["suite"]
    columns = TABLE_COLUMNS[suite]
    rows = list(records if records is not None else doc["records"])
    lines = [
        "| " + " | ".join(h for _, h, _ in columns) + " |",
        "| "
        + " | ".join(
            "---" if f in ("backend", "mode", "path", "transport", "dataset", "method") else "---:"
            for f, _, _ in columns
        )
        + " |",
    ]
    for record in rows:
        lines.append("| " + " | ".join(_cell(record, f, fmt) for f, _, fmt in columns) + " |")
    return "\n".join(lines)


def machine_summary(machine: dict[str, Any]) -> str:
    bw = machine.get("bandwidth_gbps")
    return (
        f"{machine.get('arch')} · {machine.get('cpu_model')} · {machine.get('cores')} cores"
        + (f" · streaming read {bw:.1f} GB/s" if isinstance(bw, (int, float)) else "")
        + (" · EMULATED (timings are not performance)" if machine.get("emulated") else "")
    )
