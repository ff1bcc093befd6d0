"""GET /api/live?user_id=...: a user's profile as server-sent events, from WatchProfile.

`event: profile` carries the profile (as /api/profile) now and after each change; the page then
fetches the recommendation list again. `event: failure` carries the call's error when the stream
ends with one (NOT_FOUND once the user is deleted; UNAVAILABLE when the server goes away: the
browser reconnects after `retry`). A comment line every HEARTBEAT_SECONDS keeps proxies from
closing a quiet stream and finds browsers that left. The console's shutdown ends every stream.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from driftwise.console.gateway import CallFailed
from driftwise.console.guard import SECURITY_HEADERS, json_text
from driftwise.console.messages import Json
from driftwise.console.state import console_of, text_param, token_of

HEARTBEAT_SECONDS = 15.0
RETRY_MILLISECONDS = 3000


def sse(event: str, data: object) -> bytes:
    """One server-sent event; the JSON is one line (json_text escapes newlines inside strings)."""
    return f"event: {event}\ndata: {json_text(data)}\n\n".encode()


async def live(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    user_id, token = text_param(request, "user_id", required=True), token_of(request)
    if token is not None:
        console.gateway.target.check_token()
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(f"retry: {RETRY_MILLISECONDS}\n\n".encode())
    mailbox = Mailbox()

    async def read() -> None:
        try:
            async for profile in console.gateway.watch_profile(token, user_id):
                mailbox.put(profile)
            mailbox.finish(None)
        except CallFailed as failed:
            mailbox.finish(failed)
        except asyncio.CancelledError:  # stop_all: the forwarding loop ends at once
            mailbox.finish(None)
            raise

    reader = asyncio.create_task(read())
    console.live.add(reader)
    reader.add_done_callback(console.live.discard)
    try:
        await _forward(mailbox, response)
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the browser went away, or the console is stopping
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return response


class Mailbox:
    """The newest profile not yet sent, and how the stream ended: a browser slower than the
    changes skips versions, as WatchProfile's own readers do, but never misses the end."""

    def __init__(self) -> None:
        self.profile: Json | None = None
        self.ended = False
        self.failure: CallFailed | None = None
        self._ready = asyncio.Event()

    def put(self, profile: Json) -> None:
        self.profile = profile
        self._ready.set()

    def finish(self, failure: CallFailed | None) -> None:
        self.ended, self.failure = True, failure
        self._ready.set()

    async def take(self, timeout: float) -> Json | None:
        """The newest profile (None if there is none new after `timeout`: TimeoutError)."""
        await asyncio.wait_for(self._ready.wait(), timeout)
        self._ready.clear()
        profile, self.profile = self.profile, None
        return profile


async def _forward(mailbox: Mailbox, response: web.StreamResponse) -> None:
    while True:
        try:
            profile = await mailbox.take(HEARTBEAT_SECONDS)
        except TimeoutError:
            await response.write(b": heartbeat\n\n")
            continue
        if profile is not None:
            await response.write(sse("profile", profile))
        if mailbox.ended:
            if mailbox.failure is not None:
                await response.write(sse("failure", mailbox.failure.to_json()))
            return


def stop_all(tasks: set[asyncio.Task[None]]) -> None:
    """End every live stream (the console is stopping)."""
    for task in list(tasks):
        task.cancel()
