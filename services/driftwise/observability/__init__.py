"""Tracing, metrics and logs (docs/interest-model.md §9)."""
