"""Next-item sequence models.

- :mod:`driftwise.sequence.two_tower` — the content two-tower trained at each refit and served
  without torch (its training: :mod:`driftwise.sequence.two_tower_training`);
- :mod:`driftwise.sequence.transformer` and :mod:`driftwise.sequence.training` — a SASRec-style
  causal transformer (ID and content modes, ONNX export) and its full-softmax training with early
  stopping, used by the evaluation's baselines.

Nothing is imported here, so importing the serving side does not load torch.
"""
