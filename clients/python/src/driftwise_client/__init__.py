"""Typed Python client for the Driftwise gRPC API (driftwise.v1), sync and asyncio.

    from driftwise_client import DriftwiseClient, new_event, new_item

    with DriftwiseClient("localhost:50051", timeout=5.0) as client:
        client.upsert_items([new_item("m1", "Alien", tags=["sci-fi"], category="movie")])
        client.ingest_events([new_event("u1", "LIKE", item_id="m1")])
        for item in client.iter_recommendations("u1", page_size=20, max_items=100):
            print(item.item_id, item.score)

The generated messages and stubs are in driftwise_client.v1 (the proto package driftwise.v1).
"""

from driftwise_client._version import __version__
from driftwise_client.aio import AsyncBidiStream, AsyncDriftwiseClient, AsyncResponseStream
from driftwise_client.client import DEFAULT_TIMEOUT, BidiStream, DriftwiseClient, ResponseStream
from driftwise_client.errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    DriftwiseError,
    ErrorDetails,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from driftwise_client.messages import feedback_request, new_event, new_item, stream_event_request
from driftwise_client.options import RetryPolicy, TlsConfig
from driftwise_client.v1.common_pb2 import Context, Event, EventType, InterestLayer, Item
from driftwise_client.v1.profile_service_pb2 import Profile
from driftwise_client.v1.ranking_service_pb2 import RecommendResponse, ScoredItem, StreamFeedbackResponse

__all__ = [
    "DEFAULT_TIMEOUT",
    "Aborted",
    "AlreadyExists",
    "AsyncBidiStream",
    "AsyncDriftwiseClient",
    "AsyncResponseStream",
    "BidiStream",
    "Cancelled",
    "Context",
    "DeadlineExceeded",
    "DriftwiseClient",
    "DriftwiseError",
    "ErrorDetails",
    "Event",
    "EventType",
    "FailedPrecondition",
    "FieldViolation",
    "InterestLayer",
    "Internal",
    "InvalidArgument",
    "Item",
    "NotFound",
    "PermissionDenied",
    "Profile",
    "RecommendResponse",
    "ResourceExhausted",
    "ResponseStream",
    "RetryPolicy",
    "ScoredItem",
    "StreamFeedbackResponse",
    "TlsConfig",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "__version__",
    "feedback_request",
    "new_event",
    "new_item",
    "stream_event_request",
]
