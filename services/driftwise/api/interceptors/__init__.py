"""The server's interceptors, all here, on one skeleton (base.MethodInterceptor); the chain is
declared once, in `server_chain`, outermost first:

    tracing (OpenTelemetry), metrics.py  see every call, refused ones included
    auth.py (tokens, scopes)             refuses a call before anything runs
    errors.py                            engine errors -> status codes with details
    streams.py                           ends streams at shutdown (inside the error mapping)
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc


def server_chain(
    telemetry: Sequence[grpc.aio.ServerInterceptor],
    auth: Sequence[grpc.aio.ServerInterceptor],
    errors: grpc.aio.ServerInterceptor,
    streams: grpc.aio.ServerInterceptor,
) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors of every server, outermost first (see the module's docstring)."""
    return [*telemetry, *auth, errors, streams]
