"""Training of :class:`~driftwise.evaluation.transformer.SequenceModel`: full-softmax next-item loss.

Training windows
    Each training sequence (a user's items in time order, 0-based indices) of n items has n - 1
    targets: the item at position p >= 1 is predicted from the items before it. Every epoch the
    targets of a sequence are cut into contiguous groups of at most ``max_len``, with the group
    boundaries shifted by a random offset in [0, max_len) (so a target sees different context
    lengths from epoch to epoch), and each group becomes one window: the ``max_len`` items before the
    group's last target (left-padded if fewer), predicting the next item at every slot, with the loss
    counted only at the group's own targets. So every target is counted exactly once per epoch and
    sees up to ``max_len`` items of context, like the newest event at inference.

Loss
    Cross-entropy of the FULL softmax over the whole catalogue (no sampled negatives) at every
    counted slot, averaged over the counted slots of a batch of ``batch_size`` windows. AdamW with
    ``lr`` and ``weight_decay``; windows are shuffled every epoch.

Other objectives
    :func:`fit` is the same loop (loss, optimiser, early stopping, determinism) for any model and
    any per-epoch windows with a full softmax at chosen slots; BERT4Rec's cloze windows
    (``driftwise.evaluation.bert4rec``) use it.

Early stopping
    With ``validate`` (a function of the model, in eval mode, returning a score where higher is
    better, e.g. validation HR@10), the score is computed after every epoch; training stops after
    ``patience`` epochs without a strictly better score or at ``max_epochs``, and the weights of the
    best epoch are restored. Without ``validate``, all ``max_epochs`` are run and the last weights kept.

Determinism
    Initialisation, dropout, offsets and shuffling all derive from ``config.seed`` (the torch global
    RNG is forked, so the caller's RNG state is untouched). Training runs with
    ``torch.use_deterministic_algorithms(True)`` and a fixed thread count (both restored afterwards),
    so the same inputs, seed and thread count give the same weights.

:func:`target_ranks` / :func:`ranking_metrics` rank the whole catalogue like
``driftwise.evaluation.protocol.evaluate`` (seen items removed, ties by lower index) in one batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from driftwise.evaluation.transformer import SequenceModel, SequenceModelConfig

__all__ = ["EpochStats", "fit", "ranking_metrics", "target_ranks", "train", "training_windows"]

Validate = Callable[[SequenceModel], float]
Model = TypeVar("Model", bound=SequenceModel)
# One epoch's (inputs, targets) from the epoch RNG; see ``fit``.
Windows = Callable[[np.random.Generator], tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]


@dataclass(frozen=True)
class EpochStats:
    """What one training epoch did (passed to ``train``'s ``on_epoch``)."""

    epoch: int
    """1-based."""
    loss: float
    """Mean cross-entropy per counted target."""
    score: float | None
    """``validate``'s score after the epoch, None without ``validate``."""
    seconds: float
    """Wall time of the epoch, validation included."""


def training_windows(
    sequences: Sequence[Sequence[int]], max_len: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """One epoch's windows (see module doc), in sequence order (not shuffled).

    Returns ``inputs`` (W, max_len): item index + 1, left-padded with 0; and ``targets``
    (W, max_len): the 0-based item following each slot, or -1 where the slot is not counted.
    """
    inputs: list[npt.NDArray[np.int64]] = []
    targets: list[npt.NDArray[np.int64]] = []
    for sequence in sequences:
        items = np.asarray(sequence, dtype=np.int64)
        n = len(items)
        if n < 2:
            continue
        offset = int(rng.integers(max_len))
        # Group ends (exclusive target positions), newest first: n, then n - offset - k * max_len.
        ends = [n] if offset else []
        ends += list(range(n - offset, 1, -max_len))
        for end, start in zip(ends, [*ends[1:], 1], strict=True):
            first_target = max(1, end - max_len)  # the window predicts targets first_target..end-1
            window_in = np.zeros(max_len, dtype=np.int64)
            window_target = np.full(max_len, -1, dtype=np.int64)
            count = end - first_target
            window_in[max_len - count :] = items[first_target - 1 : end - 1] + 1
            counted = items[first_target:end].copy()
            counted[: start - first_target] = -1  # those targets belong to the previous (older) group
            window_target[max_len - count :] = counted
            inputs.append(window_in)
            targets.append(window_target)
    if not inputs:
        empty = np.zeros((0, max_len), dtype=np.int64)
        return empty, empty.copy()
    return np.stack(inputs), np.stack(targets)


def train(
    sequences: Sequence[Sequence[int]],
    n_items: int,
    config: SequenceModelConfig | None = None,
    *,
    item_vectors: npt.ArrayLike | None = None,
    validate: Validate | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    num_threads: int | None = None,
) -> SequenceModel:
    """Train a model on ``sequences`` (0-based item indices in time order); see the module doc.

    Args:
        sequences: training sequences, e.g. each user's training items in time order.
        n_items: catalogue size.
        config: architecture and training settings (defaults: ``SequenceModelConfig()``).
        item_vectors: ``(n_items, d)`` fixed content vectors: trains a content-mode model;
            None trains an ID-mode (SASRec) model.
        validate: score of the model for early stopping (higher is better).
        on_epoch: called after every epoch with its :class:`EpochStats` (progress reporting).
        num_threads: torch threads while training; None keeps ``torch.get_num_threads()``. For
            small models on a busy machine 1 is often faster than several.

    Returns the trained model in eval mode.
    """
    settings = config or SequenceModelConfig()
    return fit(
        lambda: SequenceModel(n_items, settings, item_vectors),
        lambda rng: training_windows(sequences, settings.max_len, rng),
        settings,
        validate=validate,
        on_epoch=on_epoch,
        num_threads=num_threads,
    )


def fit(
    make_model: Callable[[], Model],
    windows: Windows,
    config: SequenceModelConfig,
    *,
    validate: Validate | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    num_threads: int | None = None,
) -> Model:
    """The training loop of any objective that is a full softmax at chosen slots (module doc).

    ``make_model()`` builds the model (called once, after seeding); ``windows(rng)`` gives one
    epoch's ``inputs`` (W, max_len) slot tokens (0 = padding) and ``targets`` (W, max_len): the
    0-based item to predict at each slot, -1 where the slot is not counted. :func:`train` passes
    :func:`training_windows` (next item); BERT4Rec (``driftwise.evaluation.bert4rec``) its cloze
    windows. The other arguments are :func:`train`'s.
    """
    previous_threads = torch.get_num_threads()
    threads = num_threads or previous_threads
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            return _fit(make_model(), windows, config, validate, on_epoch)
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)


def _fit(
    model: Model,
    windows: Windows,
    config: SequenceModelConfig,
    validate: Validate | None,
    on_epoch: Callable[[EpochStats], None] | None,
) -> Model:
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    best_score = -math.inf
    best_epoch = 0
    best_state: dict[str, torch.Tensor] | None = None
    for epoch in range(1, config.max_epochs + 1):
        started = time.perf_counter()
        model.train()
        inputs, targets = windows(rng)
        order = rng.permutation(len(inputs))
        total_loss, total_targets = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            slots = torch.from_numpy(inputs[rows])
            target = torch.from_numpy(targets[rows])
            counted = target >= 0
            hidden = model.encode(model.embed_items(slots), slots > 0)
            # Logits only at counted slots: the (slots x catalogue) matrix dominates the cost.
            logits = hidden[counted] @ model.output_matrix().T
            loss = F.cross_entropy(logits, target[counted])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            n = int(counted.sum())
            total_loss += loss.item() * n
            total_targets += n
        score = None
        if validate is not None:
            model.eval()
            score = float(validate(model))
            if score > best_score:
                best_score, best_epoch = score, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch is not None:
            mean_loss = total_loss / total_targets if total_targets else 0.0
            on_epoch(EpochStats(epoch, mean_loss, score, time.perf_counter() - started))
        if validate is not None and epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()


def target_ranks(
    model: SequenceModel,
    histories: Sequence[Sequence[int]],
    targets: Sequence[int],
    *,
    exclude_seen: bool = True,
) -> npt.NDArray[np.float64]:
    """1-based rank of each target among all items after its history (inf if the target was seen).

    Same rules as ``protocol.evaluate``: higher score first, ties by lower index, and with
    ``exclude_seen`` the history's items are removed from the ranking.
    """
    scores: npt.NDArray[np.float64] = model.score_histories(histories).astype(np.float64)
    rows = np.arange(len(targets))
    target = np.asarray(targets, dtype=np.intp)
    seen = np.zeros(scores.shape, dtype=bool)
    if exclude_seen:
        for row, history in enumerate(histories):
            seen[row, np.asarray(history, dtype=np.intp)] = True
    target_score = scores[rows, target][:, None]
    candidate = ~seen
    better = (candidate & (scores > target_score)).sum(axis=1)
    before = np.arange(scores.shape[1])[None, :] < target[:, None]
    tied = (candidate & before & (scores == target_score)).sum(axis=1)
    ranks: npt.NDArray[np.float64] = (better + tied + 1).astype(np.float64)
    ranks[seen[rows, target]] = math.inf
    return ranks


def ranking_metrics(ranks: npt.NDArray[np.float64], k: int = 10) -> dict[str, float]:
    """``hr@k`` and ``ndcg@k`` (one relevant item per row) from :func:`target_ranks`."""
    if not len(ranks):
        return {f"hr@{k}": 0.0, f"ndcg@{k}": 0.0}
    hit = ranks <= k
    gain = np.where(hit, 1.0 / np.log2(np.where(hit, ranks, 1.0) + 1.0), 0.0)
    return {f"hr@{k}": float(hit.mean()), f"ndcg@{k}": float(gain.mean())}
