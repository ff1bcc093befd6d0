"""Offline evaluation: leave-one-out split, full-ranking metrics and baselines (numpy only)."""
