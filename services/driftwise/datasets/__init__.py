"""Readers for public datasets used by the demo and the evaluation."""
