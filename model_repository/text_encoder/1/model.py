"""Triton python-backend model ``text_encoder``: UTF-8 ``TEXT`` -> L2-normalised ``EMBEDDING``.

MiniLM in torch (fp32 on CPU; fp16 on GPU with configs/gpu.pbtxt).

The code is ``driftwise_triton.triton_model.TextEncoderModel``, shared by every text_encoder*
model; ``config.pbtxt`` chooses the runtime and its settings.

The stub runs Python in isolated mode (``PYTHONPATH`` is ignored): ``driftwise`` must be installed
in the serving environment.
"""

from driftwise_triton.triton_model import TextEncoderModel


class TritonPythonModel(TextEncoderModel):
    """One object per model instance; see driftwise_triton.triton_model."""
