"""The interest model (docs/interest-model.md) and ranking math: plain Python and numpy.

Nothing in this package imports gRPC, Milvus or Triton; the services feed it vectors and events.
"""
