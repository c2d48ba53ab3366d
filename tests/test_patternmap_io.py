"""Import and export: PATTERN_MAP.json and JSON Lines, the text-to-embed recipe, what is
skipped and why, malformed files (nothing written), round trips."""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pytest

from synapse_mojo.errors import ImportFormatError
from synapse_mojo.patternmap import PatternMap, pattern_text, read_file
from synapse_mojo.patternmap.formats import (
    CO_EMERGED,
    CONTRIBUTED_TO,
    build_pattern_map,
    parse_jsonl,
    parse_pattern_map,
)
from synapse_mojo.stores import Relation, open_store

ENTRY = {
    "name": "Cache-aside",
    "description": "Read from the cache first; load and populate on a miss.",
    "signature": "get(k) -> v",
    "applicable_to": ["python", "redis"],
    "replaces": "direct reads",
    "example": {
        "before": "db.get(k)",
        "after": "cache.get(k) or load(k)",
        "compression_ratio": 0.5,
    },
    "confidence": 0.9,
    "abstraction_level": 2,
    "entropy_reduction": 0.3,
    "discovered_by": "pattern_miner",
    "timestamp": "2026-01-02T03:04:05Z",
    "usage_count": 7,
    "mutations": 1,
    "an_unknown_field": {"kept": [1, 2, 3]},
}

DOC = {
    "meta": {"version": "3.1", "owner": "synapse"},
    "patterns": {
        "p_001": ENTRY,
        "p_002": {
            "name": "Retry with backoff",
            "description": "Retry transient failures with jitter.",
            "signature": {"args": ["fn"], "returns": "T"},
        },
        "p_003": {
            "name": "Circuit breaker",
            "description": "Fail fast while a dependency is down.",
        },
        "p_004": {"name": "Bulkhead", "example": "separate pools"},
    },
    "emergence_log": [
        {"timestamp": "t1", "contributing_patterns": ["p_001", "p_002"], "event": "merged"},
        {"timestamp": "t2", "contributing_patterns": ["p_002", "p_001", "p_003"]},
        {"timestamp": "t3", "contributing_patterns": ["p_002", "p_003"], "new_pattern": "p_004"},
        {"timestamp": "t4", "note": "no contributors: kept, no relation"},
    ],
    "top_level_extra": {"anything": True},
}


def test_text_recipe():
    assert pattern_text(ENTRY) == (
        "Cache-aside\n"
        "Read from the cache first; load and populate on a miss.\n"
        "Signature: get(k) -> v\n"
        "Before: db.get(k)\n"
        "After: cache.get(k) or load(k)"
    )
    assert pattern_text({"name": "  Only a name  "}) == "Only a name"
    assert pattern_text({"signature": {"b": 1, "a": [2]}}) == 'Signature: {"a":[2],"b":1}'
    assert pattern_text({"example": "inline example"}) == "Example: inline example"
    assert pattern_text({"confidence": 0.5}) == ""


def test_parse_pattern_map_keeps_everything_and_derives_relations():
    doc = parse_pattern_map(json.dumps(DOC))
    assert [p.id for p in doc.patterns] == ["p_001", "p_002", "p_003", "p_004"]
    assert doc.patterns[0].metadata == ENTRY  # every field, unknown ones included
    assert doc.patterns[1].text.endswith('Signature: {"args":["fn"],"returns":"T"}')
    rels = {r.key: r.weight for r in doc.relations}
    assert rels == {
        ("p_001", "p_002", CO_EMERGED): 2.0,  # supported by two log entries
        ("p_001", "p_003", CO_EMERGED): 1.0,
        ("p_002", "p_003", CO_EMERGED): 1.0,
        ("p_002", "p_004", CONTRIBUTED_TO): 1.0,
        ("p_003", "p_004", CONTRIBUTED_TO): 1.0,
    }
    assert doc.skipped == []
    assert build_pattern_map(doc.patterns, doc.info) == DOC


def test_skipped_entries_are_reported_with_reasons():
    doc = copy.deepcopy(DOC)
    doc["patterns"]["p_bad"] = ["not", "an", "object"]
    doc["patterns"]["p_empty"] = {"confidence": 0.1}
    doc["emergence_log"] += [
        "not an object",
        {"contributing_patterns": "p_001"},
        {"contributing_patterns": ["p_001", "p_missing"]},
        {"contributing_patterns": ["p_003"], "pattern_id": "p_003"},
    ]
    text = json.dumps(doc)[:-1] + ', "patterns_dup": 1}'
    text = text.replace(
        '"p_003": {"name": "Circuit', '"p_003": {"name": "Old"}, "p_003": {"name": "Circuit', 1
    )
    parsed = parse_pattern_map(text)
    reasons = {(s.where, s.reason) for s in parsed.skipped}
    assert ("patterns.p_003", "duplicate pattern id: the later entry was kept") in reasons
    assert ("patterns.p_bad", "the entry is a list, not an object") in reasons
    assert ("patterns.p_empty", "no name, description, signature or example to embed") in reasons
    assert ("emergence_log[4]", "the entry is a str, not an object") in reasons
    assert ("emergence_log[5]", "contributing_patterns is not a list of pattern ids") in reasons
    assert (
        "emergence_log[6]",
        "contributing pattern 'p_missing' is not among the imported patterns",
    ) in reasons
    assert (
        "emergence_log[6]",
        "fewer than two known contributing patterns: no relation",
    ) in reasons
    assert ("emergence_log[7]", "no contributing pattern other than the result") in reasons
    assert [p.metadata["name"] for p in parsed.patterns if p.id == "p_003"] == ["Circuit breaker"]
    with pytest.raises(ImportFormatError, match="p_bad"):
        parse_pattern_map(json.dumps(doc), strict=True)


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"patterns": {"p_1": {"name": "x"}', "invalid JSON"),
        ("[1, 2]", "JSON object, got list"),
        ('{"meta": {}}', "no 'patterns' object"),
        ('{"patterns": [{"name": "x"}]}', "keyed by pattern id"),
        ('{"patterns": {}, "emergence_log": {"a": 1}}', "'emergence_log' must be a list"),
        ("", "empty"),
        ("just text", "invalid JSON"),
    ],
)
def test_malformed_pattern_maps_write_nothing(tmp_path, content, message):
    path = tmp_path / "PATTERN_MAP.json"
    path.write_text(content, encoding="utf-8")
    with PatternMap.open(f"sqlite:///{tmp_path / 's.db'}", start=False) as pmap:
        with pytest.raises(ImportFormatError, match=message) as info:
            pmap.import_file(path)
        assert str(path) in str(info.value)
        assert pmap.store.count() == 0 and pmap.store.info() == {}


def test_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "patterns": {\n    "p_1": {"name": "x",}\n  }\n}\n')
    with pytest.raises(ImportFormatError, match=r"bad\.json:3:\d+: invalid JSON"):
        read_file(path)
    (tmp_path / "latin1.json").write_bytes(
        '{"patterns": {"p": {"name": "caf\xe9"}}}'.encode("latin-1")
    )
    with pytest.raises(ImportFormatError, match="not UTF-8"):
        read_file(tmp_path / "latin1.json")
    with pytest.raises(ImportFormatError, match="no such file"):
        read_file(tmp_path / "nope.json")


def test_pattern_map_round_trip_through_a_store(tmp_path):
    path = tmp_path / "PATTERN_MAP.json"
    path.write_text(json.dumps(DOC), encoding="utf-8")
    with PatternMap.open(f"sqlite:///{tmp_path / 's.db'}", start=False) as pmap:
        report = pmap.import_file(path)
        assert (
            report.added,
            report.updated,
            report.relations,
            report.embedded,
            report.skipped,
        ) == (4, 0, 5, 4, [])
        out = io.StringIO()
        assert pmap.export(out, "pattern_map") == 4
        assert json.loads(out.getvalue()) == DOC
        assert list(json.loads(out.getvalue())) == list(DOC)  # top-level order kept too
        # Re-importing an unchanged file embeds nothing: the stored vectors are reused.
        again = pmap.import_file(path)
        assert (again.added, again.updated, again.embedded, again.reused) == (0, 4, 0, 4)


def test_jsonl_round_trip_keeps_embeddings_relations_and_info(tmp_path):
    source = tmp_path / "PATTERN_MAP.json"
    source.write_text(json.dumps(DOC), encoding="utf-8")
    exported = tmp_path / "export.jsonl"
    with PatternMap.open(f"sqlite:///{tmp_path / 'a.db'}", start=False) as first:
        first.import_file(source)
        with open(exported, "w", encoding="utf-8") as fh:
            first.export(fh, "jsonl")
        original = {p.id: p for p in first.store.iter_patterns()}
        relations = sorted(first.store.relations(), key=lambda r: r.key)
    lines = exported.read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "header" and len(lines) == 1 + 4 + 5
    with PatternMap.open(
        f"sqlite:///{tmp_path / 'b.db'}", start=False, embedder=first.embedder
    ) as second:
        report = second.import_file(exported)
        assert (report.added, report.embedded, report.relations) == (
            4,
            0,
            5,
        )  # same model: vectors kept
        for pid, p in original.items():
            copy_ = second.store.get(pid)
            assert copy_.text == p.text and copy_.metadata == p.metadata
            assert np.array_equal(copy_.embedding, p.embedding) and copy_.created_at == p.created_at
        assert sorted(second.store.relations(), key=lambda r: r.key) == relations
        out = io.StringIO()
        second.export(out, "pattern_map")
        assert json.loads(out.getvalue()) == DOC


def test_jsonl_parsing_details():
    lines = [
        (
            '{"kind": "header", "format": "synapse-mojo.patterns", "version": 1,'
            ' "info": {"owner": "me"}}'
        ),
        "",
        '{"id": "a", "text": "first", "lang": "py"}',
        '{"kind": "pattern", "id": "b", "metadata": {"name": "Named only"}}',
        '{"kind": "pattern", "id": "c", "text": "dup", "metadata": {"x": 1}, "x": 2}',
        '{"kind": "relation", "source": "a", "target": "b", "type": "refines", "weight": 0.5}',
        '{"kind": "relation", "source": "a"}',
        '{"kind": "comment"}',
        '{"id": "", "text": "no id"}',
        '{"id": "a", "text": "again"}',
    ]
    doc = parse_jsonl(lines, "in.jsonl")
    assert doc.info == {"owner": "me"}
    assert [(p.id, p.text) for p in doc.patterns] == [
        ("b", "Named only"),
        ("c", "dup"),
        ("a", "again"),
    ]
    assert doc.patterns[1].metadata == {"x": 1}
    assert doc.relations == [Relation("a", "b", "refines", 0.5)]
    where = {s.where for s in doc.skipped}
    assert {"line 5", "line 7", "line 8", "line 9", "line 3"} <= where
    with pytest.raises(ImportFormatError, match=r"in\.jsonl:2:"):
        parse_jsonl(['{"id": "a"}', '{"id": '], "in.jsonl")
    with pytest.raises(ImportFormatError, match="must be a JSON object"):
        parse_jsonl(["[1]"], "in.jsonl")
    with pytest.raises(ImportFormatError, match="newer"):
        parse_jsonl(['{"kind": "header", "version": 99}'], "in.jsonl")


def test_jsonl_relations_to_unknown_patterns_are_skipped(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"id": "a", "text": "alpha"}\n'
        '{"kind": "relation", "source": "a", "target": "ghost"}\n'
        '{"kind": "relation", "source": "a", "target": "stored"}\n'
    )
    with PatternMap.open(f"sqlite:///{tmp_path / 's.db'}", start=False) as pmap:
        pmap.add_text("already stored", pattern_id="stored")
        report = pmap.import_file(path)
        assert report.relations == 1
        assert [s.reason for s in report.skipped] == [
            "pattern 'ghost' is neither in the file nor in the store"
        ]
        assert pmap.store.relations() == [Relation("a", "stored")]


def test_jsonl_embeddings_from_another_model_are_replaced(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"kind": "header", "info": {"embedding_model": "some/other-model"}}\n'
        + json.dumps({"id": "a", "text": "alpha", "embedding": [0.1] * 384})
        + "\n"
    )
    with PatternMap.open(f"sqlite:///{tmp_path / 's.db'}", start=False) as pmap:
        report = pmap.import_file(path)
        assert report.embedded == 1 and "re-embedded" in report.skipped[0].reason
        assert pmap.store.info()["embedding_model"] == pmap.embedder.model
        stored = pmap.store.get("a").embedding
        assert not np.allclose(stored, np.full(384, 0.1, dtype=np.float32) / np.sqrt(384 * 0.01))


def test_import_into_a_store_with_another_dimension_is_refused(tmp_path):
    from synapse_mojo.errors import DimensionMismatchError
    from synapse_mojo.stores import Pattern

    url = f"sqlite:///{tmp_path / 's.db'}"
    with open_store(url) as store:
        store.upsert([Pattern("old", "sixteen dims", {}, np.ones(16, dtype=np.float32))])
    path = tmp_path / "PATTERN_MAP.json"
    path.write_text(json.dumps(DOC), encoding="utf-8")
    with PatternMap.open(url, start=False) as pmap:
        with pytest.raises(DimensionMismatchError, match="16-dimensional.*384"):
            pmap.import_file(path)
        assert pmap.store.count() == 1


def test_format_detection(tmp_path):
    (tmp_path / "map.txt").write_text(json.dumps(DOC, indent=2))
    (tmp_path / "lines.txt").write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n')
    (tmp_path / "prose.txt").write_text("not json at all")
    (tmp_path / "one.jsonl").write_text('{"id": "a", "text": "x"}\n')
    assert read_file(tmp_path / "map.txt").format == "pattern_map"
    assert read_file(tmp_path / "lines.txt").format == "jsonl"
    assert read_file(tmp_path / "one.jsonl").format == "jsonl"
    with pytest.raises(ImportFormatError, match="expected a JSON object"):
        read_file(tmp_path / "prose.txt")
    with pytest.raises(ValueError, match="unknown import format"):
        read_file(tmp_path / "map.txt", "yaml")


def test_unusable_embeddings_in_an_import_are_left_out_with_a_reason(tmp_path):
    """An all-zero (or non-finite) embedding used to be imported; afterwards every search and
    PatternMap.open failed with 'embeddings row 0 is a zero vector', naming no pattern."""
    path = tmp_path / "in.jsonl"
    good = [0.1] * 384
    path.write_text(
        json.dumps(
            {
                "kind": "header",
                "info": {"embedding_model": "sentence-transformers/all-MiniLM-L6-v2"},
            }
        )
        + "\n"
        + json.dumps({"id": "zero", "text": "all zeros", "embedding": [0.0] * 384})
        + "\n"
        + '{"id": "nan", "text": "not a number", "embedding": [NaN'
        + ", 0.1" * 383
        + "]}\n"
        + json.dumps({"id": "huge", "text": "beyond float32", "embedding": [1e39] + [0.0] * 383})
        + "\n"
        + json.dumps({"id": "good", "text": "fine", "embedding": good})
        + "\n"
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    with PatternMap.open(url, start=False) as pmap:
        if pmap.embedder.model != "sentence-transformers/all-MiniLM-L6-v2":  # pragma: no cover
            pytest.skip(f"the test file names MiniLM; the embedder is {pmap.embedder.model}")
        report = pmap.import_file(path)
        reasons = {s.where: s.reason for s in report.skipped}
        assert "all zeros" in reasons["line 2"] and "'zero'" in reasons["line 2"]
        assert "NaN or infinity" in reasons["line 3"] and "NaN or infinity" in reasons["line 4"]
        assert (report.added, report.embedded) == (4, 3)  # the three texts were embedded instead
        for pid in ("zero", "nan", "huge"):
            assert np.any(pmap.store.get(pid).embedding != 0)
        with pytest.raises(ImportFormatError, match="all zeros"):
            read_file(path, strict=True)
    with PatternMap.open(url) as pmap:
        assert pmap.search(np.array(good), top_k=1)[0].id == "good"


def test_a_store_holding_a_zero_embedding_names_the_pattern(tmp_path):
    from synapse_mojo.errors import InvalidInputError
    from synapse_mojo.stores import Pattern

    url = f"sqlite:///{tmp_path / 's.db'}"
    with open_store(url) as store:  # written directly, as an older version could have
        store.upsert(
            [
                Pattern("ok", "fine", {}, np.ones(8, dtype=np.float32)),
                Pattern("p_bad", "zero", {}, np.zeros(8, dtype=np.float32)),
            ]
        )
    with pytest.raises(InvalidInputError, match=r"'p_bad'.*all zeros.*patterns delete p_bad"):
        PatternMap.open(url)
    with PatternMap.open(url, start=False) as pmap:
        with pytest.raises(InvalidInputError, match=r"'p_new'.*all zeros"):
            pmap.upsert([Pattern("p_new", "zero", {}, np.zeros(8, dtype=np.float32))])
        assert "p_new" not in pmap
        pmap.delete(["p_bad"])
    with PatternMap.open(url) as pmap:
        assert [h.id for h in pmap.search(np.ones(8), top_k=5)] == ["ok"]
