"""Code that runs inside Triton's python backend (one stub process per model instance), for the
models in `model_repository/`: each `1/model.py` subclasses `triton_model.TextEncoderModel`, which
runs one of the embedders here:

- `minilm` — MiniLM in torch (and the tokenisation shared with the ONNX runtime);
- `onnx_embedder` — the same model exported to ONNX (fp32, int8), on ONNX Runtime;
- `multilingual` — the Chinese + English encoder (USE-multilingual v3 in numpy).

The service processes never import this package (they call Triton with tritonclient); the
in-process reference encoder of the tests, the evaluation and scripts/export_onnx.py do.
"""
