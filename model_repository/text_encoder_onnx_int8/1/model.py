"""Triton python-backend model ``text_encoder_onnx_int8``: UTF-8 ``TEXT`` -> L2-normalised ``EMBEDDING``.

MiniLM exported to ONNX with int8 weights, run by ONNX Runtime on the CPU.

The code is ``driftwise_triton.triton_model.TextEncoderModel``, shared by every text_encoder*
model; ``config.pbtxt`` chooses the runtime and its settings.

The stub runs Python in isolated mode (``PYTHONPATH`` is ignored): ``driftwise`` must be installed
in the serving environment.
"""

from driftwise_triton.triton_model import TextEncoderModel


class TritonPythonModel(TextEncoderModel):
    """One object per model instance; see driftwise_triton.triton_model."""
