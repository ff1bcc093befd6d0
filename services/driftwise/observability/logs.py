"""Logs: plain text for people (default) or one JSON object per line for a log pipeline, carrying
the current OpenTelemetry trace and span ids so a log line leads to its trace."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Literal

from opentelemetry import trace

from driftwise.security.tokens import current_tenant

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if tenant := current_tenant.get():
            entry["tenant"] = tenant
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int, log_format: Literal["text", "json"] = "text") -> None:
    """Root logging for the `driftwise` command (replaces handlers set before)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime  # the "Z" in its timestamps
    else:
        formatter = logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Milvus Lite runs a synchronous gRPC server in this process and logs every call it does not
    # implement at ERROR through grpc._server; Driftwise's own server is grpc.aio and logs elsewhere
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
