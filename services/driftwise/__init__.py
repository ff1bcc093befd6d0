"""Driftwise: a gRPC recommendation back end with a live, layered model of each user's interests."""

__version__ = "0.1.0"
