"""The interest model (DESIGN.md §4) and ranking math: plain Python and numpy.

Nothing in this package imports gRPC, Milvus or Triton; the services feed it vectors and events.
"""
