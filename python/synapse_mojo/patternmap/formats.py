"""Import and export: the Synapse ``PATTERN_MAP.json`` document and JSON Lines.

    doc = read_file("PATTERN_MAP.json")       # ParsedDocument: patterns, relations, info, skipped
    for item in doc.skipped: print(item.where, item.reason)
    write_pattern_map(store, open("out.json", "w"))

PATTERN_MAP.json
================

The Synapse system's pattern map: one JSON object ::

    {
      "meta": {...},                                    # kept verbatim
      "patterns": {                                     # keyed by pattern id
        "p_001": {"name": ..., "description": ..., "signature": ...,
                  "applicable_to": [...], "replaces": ...,
                  "example": {"before": ..., "after": ..., "compression_ratio": ...},
                  "confidence": ..., "abstraction_level": ..., "entropy_reduction": ...,
                  "discovered_by": ..., "timestamp": ..., "usage_count": ..., "mutations": ...,
                  ...any other field...},
        ...
      },
      "emergence_log": [{..., "contributing_patterns": ["p_001", "p_004"], ...}, ...]
    }

Each pattern becomes a ``Pattern`` whose id is its key, whose ``metadata`` is the entry
itself, every field included (unknown ones too), and whose ``text`` (what gets embedded) is
built by ``pattern_text``:

    <name>
    <description>
    Signature: <signature>
    Before: <example.before>
    After: <example.after>

Lines whose field is missing or empty are left out; a signature (or before/after) that is not
a string is written as compact JSON. ``meta``, ``emergence_log`` and any other top-level keys
are kept verbatim in the store's ``info`` (``pattern_map.*``), so ``write_pattern_map``
gives back an equivalent document (equal as JSON values).

``emergence_log`` entries become relations (the log itself is kept as is): when an entry
names its resulting pattern (``pattern_id``, ``new_pattern``, ``emerged_pattern``,
``result_pattern`` or ``pattern``, an id present in ``patterns``), every contributing pattern
gets a ``contributed_to`` relation to it; otherwise each pair of contributing patterns gets a
``co_emerged`` relation (lower id -> higher id). Weights count how many log entries support
the relation.

Skipped, with the reason, in ``ParsedDocument.skipped`` (never silently): pattern entries that
are not objects or have nothing to embed, duplicate ids (the later entry wins), log entries
that are not objects or whose ``contributing_patterns`` is not a list of strings,
contributing ids not in ``patterns``, log entries that relate fewer than two patterns.
Syntax errors and a wrong top-level shape are an ``ImportFormatError`` (nothing is written).

JSON Lines
==========

One JSON object per line (blank lines ignored)::

    {"kind": "header", "format": "synapse-mojo.patterns", "version": 1, "info": {...}}
    {"kind": "pattern", "id": "p_001", "text": "...", "metadata": {...},
     "embedding": [0.01, ...] | null, "created_at": "2026-01-02T03:04:05+00:00"}
    {"kind": "relation", "source": "p_001", "target": "p_002", "type": "refines", "weight": 0.5}

``kind`` defaults to ``pattern``; fields of a pattern line other than the ones above go into
its metadata. An embedding that cannot be indexed (NaN, infinity, beyond float32, all zeros)
is left out with the reason in ``skipped`` and the pattern's text is embedded instead.
``export`` in this format is complete (patterns, embeddings, relations, info).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import ImportFormatError, InvalidInputError, InvalidTypeError
from ..stores.base import INFO_EMBEDDING_DIM, INFO_EMBEDDING_MODEL, Pattern, PatternStore, Relation
from ..vectors import unusable_rows

JSONL_FORMAT = "synapse-mojo.patterns"
JSONL_VERSION = 1

#: Store info keys holding the parts of a PATTERN_MAP.json document that are not patterns.
INFO_META = "pattern_map.meta"
INFO_EMERGENCE_LOG = "pattern_map.emergence_log"
INFO_EXTRA = "pattern_map.extra"
INFO_KEY_ORDER = "pattern_map.key_order"

#: Fields of an emergence_log entry that may name the pattern that emerged.
RESULT_FIELDS = ("pattern_id", "new_pattern", "emerged_pattern", "result_pattern", "pattern")
CONTRIBUTED_TO = "contributed_to"
CO_EMERGED = "co_emerged"

_RECIPE_FIELDS = ("name", "description", "signature", "example")


@dataclass(frozen=True)
class Skipped:
    """Something the importer left out, where it was, and why."""

    where: str
    reason: str


@dataclass
class ParsedDocument:
    """What an import file holds, validated, ready to embed and write."""

    format: str
    patterns: list[Pattern] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# The text to embed
# --------------------------------------------------------------------------------------------


def pattern_text(entry: Mapping[str, Any]) -> str:
    """The text embedded for a PATTERN_MAP entry (the recipe in the module docstring)."""
    lines = []
    for key, label in (("name", ""), ("description", ""), ("signature", "Signature: ")):
        value = _as_text(entry.get(key))
        if value:
            lines.append(label + value)
    example = entry.get("example")
    if isinstance(example, Mapping):
        for key, label in (("before", "Before: "), ("after", "After: ")):
            value = _as_text(example.get(key))
            if value:
                lines.append(label + value)
    elif example not in (None, "", [], {}):
        lines.append("Example: " + _as_text(example))
    return "\n".join(lines)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_file(path: str | Path, format: str = "auto", *, strict: bool = False) -> ParsedDocument:
    """Reads an import file; ``format`` is ``pattern_map``, ``jsonl`` or ``auto`` (by content).

    ``strict``: a bad record is an ``ImportFormatError`` instead of a skipped entry.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ImportFormatError(f"{p}: no such file") from None
    except OSError as exc:
        raise ImportFormatError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    if format == "auto":
        format = _sniff(p, text)
    if format == "pattern_map":
        return parse_pattern_map(text, str(p), strict=strict)
    if format == "jsonl":
        return parse_jsonl(text.splitlines(), str(p), strict=strict)
    raise InvalidInputError(
        f"unknown import format {format!r}; expected pattern_map, jsonl or auto"
    )


def _sniff(path: Path, text: str) -> str:
    """.jsonl/.ndjson: JSON Lines; .json: PATTERN_MAP.json; otherwise a file that is one JSON
    value is a PATTERN_MAP.json document and anything else JSON Lines."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if not text.strip():
        raise ImportFormatError(f"{path}: the file is empty")
    if suffix == ".json":
        return "pattern_map"
    try:
        json.loads(text)
        return "pattern_map"
    except json.JSONDecodeError:
        pass
    if not text.lstrip().startswith("{"):
        raise ImportFormatError(f"{path}: expected a JSON object (PATTERN_MAP.json) or JSON Lines")
    return "jsonl"


def parse_pattern_map(
    text: str, source: str = "<string>", *, strict: bool = False
) -> ParsedDocument:
    """Parses a PATTERN_MAP.json document (see the module docstring)."""
    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    try:
        doc = json.loads(text, object_pairs_hook=pairs_hook)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(
            f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    if not isinstance(doc, dict):
        raise ImportFormatError(
            f"{source}: a PATTERN_MAP document is a JSON object, got {type(doc).__name__}"
        )
    if "patterns" not in doc:
        raise ImportFormatError(f"{source}: no 'patterns' object (is this a PATTERN_MAP.json?)")
    entries = doc["patterns"]
    if not isinstance(entries, dict):
        raise ImportFormatError(
            f"{source}: 'patterns' must be an object keyed by pattern id, "
            f"got {type(entries).__name__}"
        )
    parsed = ParsedDocument("pattern_map")
    parsed.info[INFO_KEY_ORDER] = list(doc.keys())
    if "meta" in doc:
        parsed.info[INFO_META] = doc["meta"]
    extra = {k: v for k, v in doc.items() if k not in ("meta", "patterns", "emergence_log")}
    if extra:
        parsed.info[INFO_EXTRA] = extra

    def skip(where: str, reason: str) -> None:
        if strict:
            raise ImportFormatError(f"{source}: {where}: {reason}")
        parsed.skipped.append(Skipped(where, reason))

    # Duplicate keys anywhere are reported; for pattern ids json keeps the later entry.
    for key in dict.fromkeys(duplicates):
        if key in entries:
            skip(f"patterns.{key}", "duplicate pattern id: the later entry was kept")
    for pattern_id, entry in entries.items():
        where = f"patterns.{pattern_id}"
        if not pattern_id.strip():
            skip(where, "empty pattern id")
            continue
        if not isinstance(entry, dict):
            skip(where, f"the entry is a {type(entry).__name__}, not an object")
            continue
        text = pattern_text(entry)
        if not text:
            skip(where, "no name, description, signature or example to embed")
            continue
        try:
            parsed.patterns.append(Pattern(pattern_id, text, entry))
        except (InvalidInputError, InvalidTypeError) as exc:
            skip(where, str(exc))

    log = doc.get("emergence_log")
    if log is not None:
        if not isinstance(log, list):
            raise ImportFormatError(
                f"{source}: 'emergence_log' must be a list, got {type(log).__name__}"
            )
        parsed.info[INFO_EMERGENCE_LOG] = log
        parsed.relations = _relations_from_log(log, {p.id for p in parsed.patterns}, skip)
    return parsed


def _relations_from_log(log: list[Any], known: set[str], skip: Any) -> list[Relation]:
    weights: dict[tuple[str, str, str], float] = {}
    for i, entry in enumerate(log):
        where = f"emergence_log[{i}]"
        if not isinstance(entry, dict):
            skip(where, f"the entry is a {type(entry).__name__}, not an object")
            continue
        if "contributing_patterns" not in entry:
            continue
        contributors = entry["contributing_patterns"]
        if not isinstance(contributors, list) or not all(isinstance(c, str) for c in contributors):
            skip(where, "contributing_patterns is not a list of pattern ids")
            continue
        present = []
        for c in dict.fromkeys(contributors):
            if c in known:
                present.append(c)
            else:
                skip(where, f"contributing pattern {c!r} is not among the imported patterns")
        result = next(
            (
                entry[f]
                for f in RESULT_FIELDS
                if isinstance(entry.get(f), str) and entry[f] in known
            ),
            None,
        )
        if result is not None:
            sources = [c for c in present if c != result]
            if not sources:
                skip(where, "no contributing pattern other than the result")
            for c in sources:
                key = (c, result, CONTRIBUTED_TO)
                weights[key] = weights.get(key, 0.0) + 1.0
        elif len(present) >= 2:
            ordered = sorted(present)
            for a_i, a in enumerate(ordered):
                for b in ordered[a_i + 1 :]:
                    key = (a, b, CO_EMERGED)
                    weights[key] = weights.get(key, 0.0) + 1.0
        else:
            skip(where, "fewer than two known contributing patterns: no relation")
    return [Relation(s, t, ty, w) for (s, t, ty), w in weights.items()]


def parse_jsonl(
    lines: Iterable[str], source: str = "<lines>", *, strict: bool = False
) -> ParsedDocument:
    """Parses JSON Lines (see the module docstring)."""
    parsed = ParsedDocument("jsonl")
    seen: dict[str, int] = {}

    def skip(where: str, reason: str) -> None:
        if strict:
            raise ImportFormatError(f"{source}:{where}: {reason}")
        parsed.skipped.append(Skipped(f"line {where}", reason))

    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(
                f"{source}:{number}:{exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        if not isinstance(record, dict):
            raise ImportFormatError(f"{source}:{number}: each line must be a JSON object")
        kind = record.get("kind", "pattern")
        if kind == "header":
            if record.get("format", JSONL_FORMAT) != JSONL_FORMAT:
                raise ImportFormatError(
                    f"{source}:{number}: unknown format {record.get('format')!r}"
                )
            if int(record.get("version", 1)) > JSONL_VERSION:
                raise ImportFormatError(
                    f"{source}:{number}: format version {record['version']} is newer than "
                    "this synapse-mojo reads"
                )
            info = record.get("info", {})
            if not isinstance(info, dict):
                raise ImportFormatError(f"{source}:{number}: header 'info' must be an object")
            parsed.info.update(info)
        elif kind == "pattern":
            try:
                pattern = _pattern_from_record(record, number, skip)
            except (InvalidInputError, InvalidTypeError, ValueError, TypeError) as exc:
                skip(str(number), str(exc))
                continue
            if pattern is None:
                continue
            if pattern.id in seen:
                skip(
                    str(seen[pattern.id]), f"duplicate id {pattern.id!r}: line {number} replaces it"
                )
                parsed.patterns = [p for p in parsed.patterns if p.id != pattern.id]
            seen[pattern.id] = number
            parsed.patterns.append(pattern)
        elif kind == "relation":
            try:
                parsed.relations.append(
                    Relation(
                        record.get("source"),  # type: ignore[arg-type]
                        record.get("target"),  # type: ignore[arg-type]
                        record.get("type", "related_to"),
                        record.get("weight", 1.0),
                    )
                )
            except (InvalidInputError, InvalidTypeError) as exc:
                skip(str(number), str(exc))
        else:
            skip(str(number), f"unknown kind {kind!r}")
    # Relation endpoints are checked against the file and the store by the importer.
    return parsed


_PATTERN_FIELDS = ("kind", "id", "text", "metadata", "embedding", "created_at", "updated_at")


def _pattern_from_record(record: dict[str, Any], number: int, skip: Any) -> Pattern | None:
    pattern_id = record.get("id")
    if not isinstance(pattern_id, str) or not pattern_id:
        skip(str(number), "a pattern line needs a non-empty string 'id'")
        return None
    metadata = record.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        skip(str(number), f"pattern {pattern_id!r}: 'metadata' must be an object")
        return None
    metadata = dict(metadata)
    for key, value in record.items():
        if key in _PATTERN_FIELDS:
            continue
        if key in metadata:
            skip(
                str(number),
                f"pattern {pattern_id!r}: field {key!r} also in metadata; metadata kept",
            )
        else:
            metadata[key] = value
    text = record.get("text", "")
    if not isinstance(text, str):
        skip(str(number), f"pattern {pattern_id!r}: 'text' must be a string")
        return None
    if not text.strip():
        text = pattern_text(metadata)
    if not text:
        skip(str(number), f"pattern {pattern_id!r}: no text to embed")
        return None
    embedding = record.get("embedding")
    if embedding is not None:
        vector = np.asarray(embedding, dtype=np.float64)
        if vector.ndim == 1 and vector.size:
            _bad, reasons = unusable_rows(vector.reshape(1, -1))
            if reasons:
                # The pattern is still imported: its text is embedded instead.
                skip(
                    str(number),
                    f"pattern {pattern_id!r}: the embedding {reasons[0]}; it was "
                    "left out and the text is embedded instead",
                )
                embedding = None
    return Pattern(
        pattern_id,
        text,
        metadata,
        None if embedding is None else np.asarray(embedding, dtype=np.float64),
        created_at=_parse_time(record.get("created_at"), pattern_id),
        updated_at=None,
    )


def _parse_time(value: Any, pattern_id: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"pattern {pattern_id!r}: created_at must be an ISO 8601 string")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"pattern {pattern_id!r}: created_at {value!r} is not ISO 8601"
        ) from None


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def pattern_map_entry(pattern: Pattern) -> dict[str, Any]:
    """The PATTERN_MAP entry for a stored pattern.

    Imported patterns give back their entry verbatim (their text is the recipe of their
    metadata). Others: the text becomes the ``description`` when the metadata has none of
    the recipe fields, else it is kept under ``synapse_text``.
    """
    entry = dict(pattern.metadata)
    if pattern_text(entry) == pattern.text:
        return entry
    if not any(k in entry for k in _RECIPE_FIELDS):
        return {"description": pattern.text, **entry}
    return {**entry, "synapse_text": pattern.text}


def build_pattern_map(patterns: Iterable[Pattern], info: Mapping[str, Any]) -> dict[str, Any]:
    """The PATTERN_MAP.json document for ``patterns`` and the store ``info``."""
    parts: dict[str, Any] = {}
    if INFO_META in info:
        parts["meta"] = info[INFO_META]
    parts["patterns"] = {p.id: pattern_map_entry(p) for p in patterns}
    if INFO_EMERGENCE_LOG in info:
        parts["emergence_log"] = info[INFO_EMERGENCE_LOG]
    extra = info.get(INFO_EXTRA) or {}
    if isinstance(extra, dict):
        parts.update(extra)
    order = info.get(INFO_KEY_ORDER) or []
    ordered = {k: parts[k] for k in order if k in parts}
    ordered.update({k: v for k, v in parts.items() if k not in ordered})
    return ordered


def write_pattern_map(store: PatternStore, out: IO[str], *, indent: int | None = 2) -> int:
    """Writes the store as a PATTERN_MAP.json document; returns the number of patterns."""
    patterns = list(store.iter_patterns())
    document = build_pattern_map(patterns, store.info())
    json.dump(document, out, ensure_ascii=False, indent=indent)
    out.write("\n")
    return len(patterns)


def iter_jsonl(store: PatternStore, *, embeddings: bool = True) -> Iterator[str]:
    """The store as JSON Lines: a header, every pattern, every relation."""
    info = store.info()
    yield _dumps({"kind": "header", "format": JSONL_FORMAT, "version": JSONL_VERSION, "info": info})
    for pattern in store.iter_patterns():
        record: dict[str, Any] = {
            "kind": "pattern",
            "id": pattern.id,
            "text": pattern.text,
            "metadata": pattern.metadata,
        }
        if embeddings:
            record["embedding"] = (
                None if pattern.embedding is None else [float(x) for x in pattern.embedding]
            )
        if pattern.created_at is not None:
            record["created_at"] = pattern.created_at.isoformat()
        if pattern.updated_at is not None:
            record["updated_at"] = pattern.updated_at.isoformat()
        yield _dumps(record)
    for relation in store.relations():
        yield _dumps(
            {
                "kind": "relation",
                "source": relation.source,
                "target": relation.target,
                "type": relation.type,
                "weight": relation.weight,
            }
        )


def write_jsonl(store: PatternStore, out: IO[str], *, embeddings: bool = True) -> int:
    """Writes the store as JSON Lines; returns the number of patterns."""
    count = 0
    for line in iter_jsonl(store, embeddings=embeddings):
        out.write(line + "\n")
        if line.startswith('{"kind":"pattern"'):
            count += 1
    return count


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


#: Info keys a JSONL header may carry that the store itself maintains.
MANAGED_INFO = (INFO_EMBEDDING_DIM, INFO_EMBEDDING_MODEL)

__all__ = [
    "CONTRIBUTED_TO",
    "CO_EMERGED",
    "ParsedDocument",
    "Skipped",
    "build_pattern_map",
    "iter_jsonl",
    "parse_jsonl",
    "parse_pattern_map",
    "pattern_map_entry",
    "pattern_text",
    "read_file",
    "write_jsonl",
    "write_pattern_map",
]
