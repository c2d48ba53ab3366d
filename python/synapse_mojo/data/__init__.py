"""Data files shipped with the package: the sample pattern map.

    from synapse_mojo.data import sample_patterns_path
    pmap.import_file(sample_patterns_path())

``sample_patterns.json`` is a PATTERN_MAP.json of a few hundred software patterns, written by
``synapse_mojo/_dev/generate_sample_patterns.py``; ``synapse-mojo demo`` imports it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_patterns_path() -> Path:
    """The sample PATTERN_MAP.json shipped inside the package."""
    return Path(str(resources.files(__name__) / "sample_patterns.json"))


__all__ = ["sample_patterns_path"]
