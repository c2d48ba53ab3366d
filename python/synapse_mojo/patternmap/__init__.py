"""The pattern map service: store + embedder + in-memory index, import and export.

    from synapse_mojo.patternmap import PatternMap
    with PatternMap.open() as pmap:                  # SYNAPSE_STORE_URL or the user data file
        pmap.import_file("PATTERN_MAP.json", progress=True)
        pmap.search("cache invalidation on write", top_k=5)

See ``patternmap.service`` (``PatternMap``) and ``patternmap.formats`` (PATTERN_MAP.json and
JSONL, the text-to-embed recipe).
"""

from .formats import ParsedDocument, Skipped, pattern_text, read_file
from .service import ImportReport, PatternHit, PatternMap, PatternSearchResult

__all__ = [
    "ImportReport",
    "ParsedDocument",
    "PatternHit",
    "PatternMap",
    "PatternSearchResult",
    "Skipped",
    "pattern_text",
    "read_file",
]
