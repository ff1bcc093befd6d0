"""Triton python-backend model ``text_encoder_onnx_int8``: UTF-8 ``TEXT`` -> L2-normalised ``EMBEDDING``.

MiniLM exported to ONNX with int8 weights, run by ONNX Runtime on the CPU.

The code is ``driftwise.inference.triton_model.TextEncoderModel``, shared by every text_encoder*
model; ``config.pbtxt`` chooses the runtime and its settings.

The stub runs Python in isolated mode, which ignores ``PYTHONPATH``: the normal way is to
install ``driftwise`` into the serving environment; for an uninstalled checkout the entries of
``PYTHONPATH`` (set by ``LocalTritonServer``) are appended to ``sys.path`` and the import retried.
"""

import os
import sys

try:
    from driftwise.inference.triton_model import TextEncoderModel
except ImportError:
    sys.path.extend(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path)
    try:
        from driftwise.inference.triton_model import TextEncoderModel
    except ImportError as exc:
        raise ImportError(
            f"text_encoder_onnx_int8: cannot import driftwise in the python stub ({sys.executable}, "
            f"sys.path={sys.path}); install the driftwise package into the serving environment"
        ) from exc


class TritonPythonModel(TextEncoderModel):
    """One object per model instance; see driftwise.inference.triton_model."""
