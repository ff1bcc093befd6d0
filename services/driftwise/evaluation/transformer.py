"""A small causal transformer for next-item prediction (SASRec architecture), in two modes.

Architecture (shared by both modes)
    A sequence of at most ``max_len`` events is LEFT-padded to ``max_len`` slots, so the newest event
    is always the last slot. Each slot's input token (see the modes) is zeroed at padding slots, then
    a learned position embedding of the slot is added, followed by dropout. ``blocks`` pre-LN
    transformer blocks follow: ``x += Dropout(Attention(LN(x)))`` then ``x += Dropout(FFN(LN(x)))``
    with ``FFN = Linear(hidden, ffn_dim) -> GELU -> Dropout -> Linear(ffn_dim, hidden)``, and a final
    LayerNorm. Attention is multi-head scaled dot-product attention with a causal mask (slot t sees
    slots <= t) and a padding mask (padding slots are never attended to). Every slot may always
    attend to itself, so a padding slot, which sees no real event, still has a finite softmax; its
    output is never read and, as no real slot attends to it, cannot leak into real slots. The
    hidden state ``h_t`` of slot t predicts the event that follows slot t. (A subclass with
    ``causal = False`` drops the causal mask and keeps the padding mask: the bidirectional BERT4Rec
    baseline, ``driftwise.evaluation.bert4rec``.)

ID mode (``item_vectors is None``; the SASRec baseline)
    Input token = ``E[item + 1]`` from a learned table with ``n_items + 1`` rows (row 0 = padding).
    Scores are tied to the same table: ``logit_i = h_t . E[i + 1]``.

Content mode (``item_vectors`` given; Driftwise's sequence model)
    Items are FIXED float32 content vectors ``e_i`` (``n_items x d``, L2-normalised, not trained).
    Input token = ``W_in e + b_in`` (``Linear(d, hidden)``). Scores use ``W_out`` (``Linear(d, hidden,
    bias=False)``): ``logit_i = h_t . (W_out e_i) = q_t . e_i`` with the QUERY VECTOR
    ``q_t = W_out^T h_t`` in content space (d-dim). The serving system sends ``q`` to the vector
    database, and an item unknown at training time is scored from its content vector alone.

Items are 0-based indices everywhere in the public API (index ``i`` is row ``i`` of ``item_vectors``);
the +1 shift for the padding row of ID mode is internal.

Serving export (content mode): :func:`export_onnx` writes the graph ``EVENT_VECTORS`` float32
``[batch, max_len, d]`` + ``EVENT_MASK`` float32 ``[batch, max_len]`` (1 = event, 0 = padding;
left-padded) -> ``QUERY`` float32 ``[batch, d]`` (``q`` of the last slot). :func:`padded_query` is the
same computation in torch, for checking the export. :func:`save_model` / :func:`load_model` store the
weights (``weights.pt``, a plain state dict loadable with ``weights_only=True``) and the config
(``config.json``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

__all__ = [
    "ONNX_INPUTS",
    "ONNX_OPSET",
    "ONNX_OUTPUT",
    "SequenceModel",
    "SequenceModelConfig",
    "export_onnx",
    "load_model",
    "padded_query",
    "save_model",
]

ONNX_INPUTS = ("EVENT_VECTORS", "EVENT_MASK")
ONNX_OUTPUT = "QUERY"
ONNX_OPSET = 17
_CONFIG_FILE = "config.json"
_WEIGHTS_FILE = "weights.pt"
_INFERENCE_BATCH = 256  # sequences per forward pass when scoring


@dataclass(frozen=True)
class SequenceModelConfig:
    """Architecture and training settings.

    Architecture defaults follow SASRec/RecBole (64 wide, 2 blocks, 50 events). ``lr``,
    ``batch_size`` and ``dropout`` are the best of a short search on ml-latest-small (validation HR@10
    of the leave-one-out split; lr 1e-3/2e-3/3e-3, dropout 0.2/0.5; ``bench/sequence_models.py``):
    3e-3 rises faster for 4 epochs, then falls back; 1e-3 climbs slowly with plateaus and peaked at
    epoch 30 (validation HR@10 0.123, test 0.116; 1,366 s with 1 thread). A full-softmax epoch over
    the 99k training targets takes about 15-35 s on 2 CPU cores. ``patience`` is generous because
    validation HR@10 on 610 users moves by about one standard error (0.01) between epochs and
    plateaus early: with patience 5 training stopped at epoch ~10 at 0.05.
    """

    max_len: int = 50
    """Events the model sees: the newest ``max_len`` of a history (training windows are this long)."""
    hidden: int = 64
    """Width of the token and hidden vectors."""
    blocks: int = 2
    """Transformer blocks."""
    heads: int = 1
    """Attention heads (must divide ``hidden``)."""
    ffn_dim: int = 256
    """Inner width of each block's feed-forward network."""
    dropout: float = 0.2
    """Dropout on the embeddings, the attention weights and each residual branch."""
    lr: float = 1e-3
    """AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW (decoupled) weight decay."""
    batch_size: int = 64
    """Training windows per optimiser step."""
    max_epochs: int = 60
    """Upper bound on passes over the training windows."""
    patience: int = 8
    """Early stopping: stop after this many epochs without a better validation score."""
    seed: int = 0
    """Seeds initialisation, dropout, window offsets and shuffling."""

    def __post_init__(self) -> None:
        for name in ("max_len", "hidden", "blocks", "heads", "ffn_dim", "batch_size", "max_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide hidden ({self.hidden})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")


class _Block(nn.Module):
    """Pre-LN transformer block: masked multi-head self-attention, then a feed-forward network."""

    def __init__(self, config: SequenceModelConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.attention_norm = nn.LayerNorm(config.hidden)
        self.qkv = nn.Linear(config.hidden, 3 * config.hidden)
        self.attention_out = nn.Linear(config.hidden, config.hidden)
        self.ffn_norm = nn.LayerNorm(config.hidden)
        self.ffn = nn.Sequential(
            nn.Linear(config.hidden, config.ffn_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.ffn_dim, config.hidden),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        """``x`` (B, T, hidden); ``blocked`` (B, 1, T, T) True where query slot t may NOT see key j."""
        batch, slots, hidden = x.shape
        head_dim = hidden // self.heads
        # (B, T, 3, heads, head_dim) -> three (B, heads, T, head_dim)
        qkv = self.qkv(self.attention_norm(x)).reshape(batch, slots, 3, self.heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        # Written out (not scaled_dot_product_attention) so the ONNX export is plain MatMul/Softmax.
        weights = (q @ k.transpose(-2, -1)) / math.sqrt(head_dim)
        weights = torch.softmax(weights.masked_fill(blocked, float("-inf")), dim=-1)
        mixed = (self.dropout(weights) @ v).transpose(1, 2).reshape(batch, slots, hidden)
        x = x + self.dropout(self.attention_out(mixed))
        out: torch.Tensor = x + self.dropout(self.ffn(self.ffn_norm(x)))
        return out


class SequenceModel(nn.Module):
    """The causal transformer in ID mode (``item_vectors=None``) or content mode (see module doc).

    Args:
        n_items: catalogue size; items are 0-based indices.
        config: architecture (the training fields are kept with the model for reference).
        item_vectors: content mode only: ``(n_items, d)`` float32, stored as a fixed buffer.
    """

    padded_vectors: torch.Tensor | None  # content mode: (n_items + 1, d), row 0 = padding
    causal: bool = True
    """Attention mask: slot t sees slots <= t. A bidirectional subclass (BERT4Rec) sets False."""
    extra_tokens: int = 0
    """ID mode: item-table rows after the items (tokens ``n_items + 1`` on, e.g. BERT4Rec's [MASK])."""

    def __init__(
        self,
        n_items: int,
        config: SequenceModelConfig,
        item_vectors: npt.ArrayLike | None = None,
    ) -> None:
        super().__init__()
        if n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {n_items}")
        self.n_items = n_items
        self.config = config
        self.item_embedding: nn.Embedding | None = None
        self.input_proj: nn.Linear | None = None
        self.output_proj: nn.Linear | None = None
        if item_vectors is None:
            rows = n_items + 1 + self.extra_tokens
            self.item_embedding = nn.Embedding(rows, config.hidden, padding_idx=0)
            self.register_buffer("padded_vectors", None)
        else:
            vectors = torch.as_tensor(np.asarray(item_vectors, dtype=np.float32))
            if vectors.ndim != 2 or vectors.shape[0] != n_items:
                raise ValueError(f"item_vectors must be ({n_items}, d), got {tuple(vectors.shape)}")
            # Row 0 is the padding vector, so an index tensor shifted by one gathers both at once.
            padded = torch.cat([torch.zeros(1, vectors.shape[1]), vectors])
            self.register_buffer("padded_vectors", padded)
            self.input_proj = nn.Linear(vectors.shape[1], config.hidden)
            self.output_proj = nn.Linear(vectors.shape[1], config.hidden, bias=False)
        self.position = nn.Embedding(config.max_len, config.hidden)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.blocks))
        self.final_norm = nn.LayerNorm(config.hidden)
        self.apply(_init_weights)

    # ----- structure -----

    @property
    def content_mode(self) -> bool:
        return self.padded_vectors is not None

    @property
    def vector_dim(self) -> int | None:
        """``d`` of the content vectors (content mode), else None."""
        return None if self.padded_vectors is None else int(self.padded_vectors.shape[1])

    @property
    def item_vectors(self) -> torch.Tensor:
        """The fixed ``(n_items, d)`` content vectors (content mode only)."""
        if self.padded_vectors is None:
            raise ValueError("an ID-mode model has no item vectors")
        vectors: torch.Tensor = self.padded_vectors[1:]
        return vectors

    # ----- the computation -----

    def embed_items(self, slots: torch.Tensor) -> torch.Tensor:
        """Input tokens ``(B, T, hidden)`` of item indices SHIFTED BY ONE (``(B, T)``, 0 = padding)."""
        if self.item_embedding is not None:
            tokens: torch.Tensor = self.item_embedding(slots)
            return tokens
        assert self.padded_vectors is not None
        return self.embed_vectors(self.padded_vectors[slots], slots > 0)

    def embed_vectors(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Input tokens ``(B, T, hidden)`` of raw content vectors ``(B, T, d)``; zero where not ``mask``."""
        if self.input_proj is None:
            raise ValueError("an ID-mode model takes item indices, not content vectors")
        tokens: torch.Tensor = self.input_proj(vectors)
        return tokens * mask.unsqueeze(-1).to(tokens.dtype)

    def encode(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(B, T, hidden)`` of input tokens ``(B, T, hidden)``; ``mask`` (B, T) bool.

        ``T`` must be ``max_len`` (slots are positions 0..max_len-1, newest event last).
        """
        slots = tokens.shape[1]
        x = tokens * mask.unsqueeze(-1).to(tokens.dtype) + self.position.weight[:slots]
        x = self.embedding_dropout(x)
        index = torch.arange(slots, device=tokens.device)
        diagonal = index.unsqueeze(0) == index.unsqueeze(1)
        blocked = ~mask.unsqueeze(1) & ~diagonal.unsqueeze(0)
        if self.causal:
            future = index.unsqueeze(0) > index.unsqueeze(1)  # [t, j]: key j comes after query t
            blocked = future.unsqueeze(0) | blocked
        blocked = blocked.unsqueeze(1)  # broadcast over heads
        for block in self.blocks:
            x = block(x, blocked)
        hidden: torch.Tensor = self.final_norm(x)
        return hidden

    def output_matrix(self) -> torch.Tensor:
        """``(n_items, hidden)``: row i is the vector whose dot product with ``h_t`` is item i's logit."""
        if self.item_embedding is not None:  # rows past n_items are extra tokens, not items
            return self.item_embedding.weight[1 : self.n_items + 1]
        assert self.output_proj is not None
        projected: torch.Tensor = self.output_proj(self.item_vectors)
        return projected

    def query(self, hidden: torch.Tensor) -> torch.Tensor:
        """Content-space query ``q = W_out^T h`` of hidden states ``(..., hidden)`` -> ``(..., d)``."""
        if self.output_proj is None:
            raise ValueError("an ID-mode model has no content-space query")
        return hidden @ self.output_proj.weight

    # ----- batched numpy inference (eval mode, no gradients) -----

    def pad_histories(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        """``(B, max_len)`` int64 of the newest ``max_len`` items of each history, +1, left-padded with 0."""
        slots = np.zeros((len(histories), self.config.max_len), dtype=np.int64)
        for row, history in enumerate(histories):
            recent = np.asarray(history[-self.config.max_len :] if len(history) else [], dtype=np.int64)
            if recent.size and (recent.min() < 0 or recent.max() >= self.n_items):
                raise ValueError(f"history {row} has an item index outside [0, {self.n_items})")
            slots[row, slots.shape[1] - recent.size :] = recent + 1
        return torch.from_numpy(slots)

    def score_histories(self, histories: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        """``(B, n_items)`` float32 logits of the item following each history (its newest ``max_len``)."""
        out = np.zeros((len(histories), self.n_items), dtype=np.float32)
        with _eval_mode(self), torch.inference_mode():
            items = self.output_matrix()
            for start in range(0, len(histories), _INFERENCE_BATCH):
                slots = self.pad_histories(histories[start : start + _INFERENCE_BATCH])
                last = self.encode(self.embed_items(slots), slots > 0)[:, -1]
                out[start : start + len(slots)] = (last @ items.T).numpy()
        return out

    def query_vectors(self, history_vectors: Sequence[npt.ArrayLike]) -> npt.NDArray[np.float32]:
        """``(B, d)`` content-space queries from the raw content vectors ``(n_i, d)`` of each history.

        Works for items unknown at training time; ``query_vectors(...) @ item_vectors.T`` equals
        :meth:`score_histories` for the same histories.
        """
        d = self.vector_dim
        if d is None:
            raise ValueError("query_vectors needs a content-mode model")
        max_len = self.config.max_len
        out = np.zeros((len(history_vectors), d), dtype=np.float32)
        for start in range(0, len(history_vectors), _INFERENCE_BATCH):
            chunk = history_vectors[start : start + _INFERENCE_BATCH]
            vectors = np.zeros((len(chunk), max_len, d), dtype=np.float32)
            mask = np.zeros((len(chunk), max_len), dtype=np.float32)
            for row, history in enumerate(chunk):
                recent = np.asarray(history, dtype=np.float32).reshape(-1, d)[-max_len:]
                if len(recent):
                    vectors[row, -len(recent) :] = recent
                    mask[row, -len(recent) :] = 1.0
            out[start : start + len(chunk)] = padded_query(self, vectors, mask)
        return out


class _QueryGraph(nn.Module):
    """``(EVENT_VECTORS, EVENT_MASK) -> QUERY``: the serving computation, the module that is exported."""

    def __init__(self, model: SequenceModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        real = mask > 0.5
        hidden = self.model.encode(self.model.embed_vectors(vectors, real), real)
        return self.model.query(hidden[:, -1])


def padded_query(
    model: SequenceModel, event_vectors: npt.ArrayLike, event_mask: npt.ArrayLike
) -> npt.NDArray[np.float32]:
    """The exported graph's computation in torch: ``[B, max_len, d]`` + ``[B, max_len]`` -> ``[B, d]``."""
    vectors = torch.as_tensor(np.asarray(event_vectors, dtype=np.float32))
    mask = torch.as_tensor(np.asarray(event_mask, dtype=np.float32))
    if vectors.ndim != 3 or vectors.shape[1] != model.config.max_len or vectors.shape[2] != model.vector_dim:
        raise ValueError(f"event_vectors must be [batch, {model.config.max_len}, {model.vector_dim}]")
    if mask.shape != vectors.shape[:2]:
        raise ValueError(f"event_mask must be {list(vectors.shape[:2])}, got {list(mask.shape)}")
    with _eval_mode(model), torch.inference_mode():
        query: npt.NDArray[np.float32] = _QueryGraph(model)(vectors, mask).numpy()
    return query


def export_onnx(model: SequenceModel, path: str | Path) -> None:
    """Write the content-mode query graph (see module doc) as ONNX, batch axis dynamic."""
    d = model.vector_dim
    if d is None:
        raise ValueError("only a content-mode model can be exported (ID mode has no content query)")
    max_len = model.config.max_len
    # Two rows with different padding, so the masking is exercised while tracing.
    vectors = torch.zeros(2, max_len, d)
    mask = torch.ones(2, max_len)
    mask[1, : max_len // 2] = 0.0
    graph = _QueryGraph(model)
    with _eval_mode(model), warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter (as in scripts/export_onnx.py: no onnxscript dependency); its
        # deprecation notes are noise, the result is checked against torch by the tests.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (vectors, mask),
            str(path),
            dynamo=False,
            input_names=list(ONNX_INPUTS),
            output_names=[ONNX_OUTPUT],
            dynamic_axes={name: {0: "batch"} for name in (*ONNX_INPUTS, ONNX_OUTPUT)},
            opset_version=ONNX_OPSET,
            do_constant_folding=True,
        )


def save_model(model: SequenceModel, directory: str | Path) -> None:
    """Write ``config.json`` (config, n_items, d) and ``weights.pt`` (the state dict) to ``directory``."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "config": dataclasses.asdict(model.config),
        "n_items": model.n_items,
        "vector_dim": model.vector_dim,
    }
    (folder / _CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    torch.save(model.state_dict(), folder / _WEIGHTS_FILE)


def load_model(directory: str | Path) -> SequenceModel:
    """Rebuild a model written by :func:`save_model` (in eval mode)."""
    folder = Path(directory)
    meta = json.loads((folder / _CONFIG_FILE).read_text(encoding="utf-8"))
    config = SequenceModelConfig(**meta["config"])
    n_items = int(meta["n_items"])
    d = meta["vector_dim"]
    placeholder = None if d is None else np.zeros((n_items, int(d)), dtype=np.float32)
    model = SequenceModel(n_items, config, placeholder)
    state = torch.load(folder / _WEIGHTS_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)  # also restores the item vectors buffer
    return model.eval()


def _init_weights(module: nn.Module) -> None:
    # Small normal weights (std 0.02, as in BERT/SASRec implementations): with tied item embeddings
    # the initial logits are near zero, so the first steps see an almost uniform softmax.
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.Embedding) and module.padding_idx is not None:
        with torch.no_grad():
            module.weight[module.padding_idx].zero_()


class _eval_mode:
    """Context manager: put a module in eval mode and restore its previous mode afterwards."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.was_training = module.training

    def __enter__(self) -> None:
        self.module.eval()

    def __exit__(self, *exc: object) -> None:
        self.module.train(self.was_training)
