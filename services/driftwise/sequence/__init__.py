"""The next-item model that serves: :mod:`driftwise.sequence.two_tower`, a content two-tower trained
at each refit and served without torch (its training, with torch:
:mod:`driftwise.sequence.two_tower_training`). The SASRec-style transformer that the evaluation
trains as a baseline is in :mod:`driftwise.evaluation.transformer`.

Nothing is imported here, so importing the serving side does not load torch.
"""
