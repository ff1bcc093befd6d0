"""The inference tier: the local Triton server, the encoder clients and the shared MiniLM code."""
