"""Next-item sequence models: a SASRec-style causal transformer in ID mode and in content mode.

See :mod:`driftwise.sequence.transformer` (the model, ONNX export, save/load) and
:mod:`driftwise.sequence.training` (full-softmax training with early stopping).
"""

from driftwise.sequence.training import EpochStats, ranking_metrics, target_ranks, train
from driftwise.sequence.transformer import (
    SequenceModel,
    SequenceModelConfig,
    export_onnx,
    load_model,
    padded_query,
    save_model,
)

__all__ = [
    "EpochStats",
    "SequenceModel",
    "SequenceModelConfig",
    "export_onnx",
    "load_model",
    "padded_query",
    "ranking_metrics",
    "save_model",
    "target_ranks",
    "train",
]
