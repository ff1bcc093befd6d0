"""Tracing, metrics and logs (DESIGN §7)."""
