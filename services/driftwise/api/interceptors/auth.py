"""Bearer-token authentication and per-tenant scopes for every Driftwise call (settings.auth).

The caller sends `authorization: Bearer <token>`. No token, a malformed header or an unknown token
-> UNAUTHENTICATED (ErrorInfo reason MISSING_TOKEN / MALFORMED_TOKEN / INVALID_TOKEN); a tenant
without the method's scope (driftwise.security.scopes) -> PERMISSION_DENIED (reason SCOPE_REQUIRED,
metadata scope and tenant). The decision uses only the method and the metadata, so a refused
stream ends before a single message is read, and a refused unary call before the servicer runs.

- grpc.health.v1 stays open: kubelet's gRPC probes send no token.
- Reflection (and any method outside the table) needs a valid token of any tenant: it shows only
  the API schema, public in protos/, but anonymous callers have no business listing services.
- A Driftwise method missing from the scope table is refused to everyone (fail closed).
Every role of the cluster mode checks tokens itself; no process trusts that a call came through
another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from opentelemetry import trace

from driftwise.api.errors import rich_status
from driftwise.api.interceptors.base import OWN_METHODS, Handler, MethodInterceptor, Streaming, Unary, rewrap
from driftwise.errors import AccessError, PermissionDeniedError, UnauthenticatedError
from driftwise.security.scopes import METHOD_SCOPES
from driftwise.security.tokens import Tenant, TokenTable, current_tenant

Context = grpc.aio.ServicerContext[Any, Any]
OPEN_METHODS = "/grpc.health.v1.Health/"
SCHEME = "bearer "


def _bearer(metadata: Any) -> str:
    """The token of the call's authorization header; UnauthenticatedError if absent or malformed."""
    values = [value for key, value in metadata or () if key.lower() == "authorization"]
    if not values:
        raise UnauthenticatedError("MISSING_TOKEN", "missing token: send 'authorization: Bearer <token>'")
    value = values[0]
    if len(values) > 1 or not isinstance(value, str) or not value[: len(SCHEME)].lower() == SCHEME:
        raise UnauthenticatedError(
            "MALFORMED_TOKEN", "malformed authorization header: expected one 'Bearer <token>'"
        )
    token = value[len(SCHEME) :].strip()
    if not token:
        raise UnauthenticatedError("MALFORMED_TOKEN", "malformed authorization header: empty token")
    return token


def authorize(tokens: TokenTable, method: str, metadata: Any) -> Tenant:
    """The caller's tenant if it may call `method`; UnauthenticatedError / PermissionDeniedError."""
    tenant = tokens.tenant(_bearer(metadata))
    if tenant is None:
        raise UnauthenticatedError("INVALID_TOKEN", "invalid token")
    if not method.startswith(OWN_METHODS):
        return tenant  # reflection: any tenant
    scope = METHOD_SCOPES.get(method)
    if scope is None:
        raise PermissionDeniedError(
            "METHOD_WITHOUT_SCOPE", f"{method} has no scope in the scope table: refused to all"
        )
    if scope not in tenant.scopes:
        raise PermissionDeniedError(
            "SCOPE_REQUIRED",
            f"{method.rsplit('/', 1)[-1]} needs scope {scope.value!r}, which tenant {tenant.name!r} lacks",
            {"scope": scope.value, "tenant": tenant.name},
        )
    return tenant


class AuthInterceptor(MethodInterceptor):
    def __init__(self, tokens: TokenTable) -> None:
        self._tokens = tokens

    def applies(self, method: str) -> bool:
        return not method.startswith(OPEN_METHODS)  # everything else, reflection included

    def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        try:
            tenant = authorize(self._tokens, details.method, details.invocation_metadata)
        except AccessError as exc:
            unary, streaming = _refused_unary(exc), _refused_stream(exc)
            return rewrap(handler, lambda _: unary, lambda _: streaming)
        return rewrap(handler, lambda b: _as_tenant_unary(b, tenant), lambda b: _as_tenant_stream(b, tenant))


async def _abort(context: Context, exc: AccessError) -> None:
    status = rich_status(exc)
    await context.abort(status.code, status.details, status.trailing_metadata)


def _refused_unary(exc: AccessError) -> Unary:
    async def refuse(request: Any, context: Context) -> Any:
        await _abort(context, exc)

    return refuse


def _refused_stream(exc: AccessError) -> Streaming:
    async def refuse(request: Any, context: Context) -> AsyncIterator[Any]:
        await _abort(context, exc)  # the request stream is never read
        yield  # pragma: no cover - an async generator, as grpc.aio expects of a streaming behaviour

    return refuse


def _mark(tenant: Tenant) -> None:
    current_tenant.set(tenant.name)
    trace.get_current_span().set_attribute("driftwise.tenant", tenant.name)  # no-op without tracing


def _as_tenant_unary(behavior: Unary, tenant: Tenant) -> Unary:
    async def wrapper(request: Any, context: Context) -> Any:
        _mark(tenant)
        return await behavior(request, context)

    return wrapper


def _as_tenant_stream(behavior: Streaming, tenant: Tenant) -> Streaming:
    async def wrapper(request: Any, context: Context) -> AsyncIterator[Any]:
        _mark(tenant)
        async for response in behavior(request, context):
            yield response

    return wrapper
