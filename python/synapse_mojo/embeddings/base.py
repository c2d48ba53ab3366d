"""The embedder interface: text in, L2-normalised float32 vectors out.

    with embedder_from_env() as embedder:          # local MiniLM, or the server in the env
        vectors = embedder.embed(["retry with backoff", "circuit breaker"])
        vectors.shape                               # (2, embedder.dim), rows of unit length

Every embedder returns ``float32`` arrays of shape ``(len(texts), dim)`` whose rows have unit
L2 norm, so that a dot product is a cosine similarity and the vectors can go straight into a
``PatternIndex``. An empty list gives a ``(0, dim)`` array.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType

import numpy as np

from ..errors import EmbeddingError, InvalidInputError, InvalidTypeError


class Embedder(ABC):
    """Turns text into L2-normalised float32 vectors of a fixed dimension."""

    #: A name for the model (recorded in the pattern store next to the vectors).
    model: str

    @property
    @abstractmethod
    def dim(self) -> int:
        """The dimension of the vectors this embedder returns."""

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeds ``texts``; returns a float32 array ``(len(texts), dim)`` of unit rows.

        ``texts`` is a sequence of strings (a single ``str`` is rejected, so that a string is
        never embedded character by character). Order is kept. Raises ``InvalidTypeError`` for
        non-strings and ``EmbeddingError`` (or a subclass) when the model or server fails.
        """

    def embed_one(self, text: str) -> np.ndarray:
        """Embeds one string; returns a float32 vector ``(dim,)`` of unit length."""
        return self.embed([text])[0]

    def close(self) -> None:  # noqa: B027 - optional hook; embedders that hold nothing keep it
        """Releases resources (connections, model weights). Idempotent."""

    def __enter__(self) -> Embedder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list, or a clear error for anything that is not a sequence of strings."""
    if isinstance(texts, (str, bytes)):
        raise InvalidTypeError("texts must be a sequence of strings, not a single string")
    try:
        items = list(texts)
    except TypeError:
        raise InvalidTypeError(
            f"texts must be a sequence of strings, got {type(texts).__name__}"
        ) from None
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidTypeError(f"texts[{i}] is {type(item).__name__}, expected str")
    return items


def l2_normalise(vectors: np.ndarray, what: str = "embedding") -> np.ndarray:
    """Rows scaled to unit length, as C-contiguous float32 (norms computed in float64).

    A zero or non-finite row means the model or server returned garbage: ``EmbeddingError``.
    """
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim != 2:
        raise InvalidInputError(f"{what}s must be a 2-D array, got shape {array.shape}")
    if array.shape[0] == 0:
        return np.zeros(array.shape, dtype=np.float32)
    if not np.all(np.isfinite(array)):
        row = int(np.argwhere(~np.isfinite(array))[0][0])
        raise EmbeddingError(f"{what} {row} contains NaN or infinity")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if np.any(norms == 0):
        row = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise EmbeddingError(f"{what} {row} is a zero vector")
    return np.ascontiguousarray(array / norms, dtype=np.float32)
