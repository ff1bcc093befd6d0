"""Real servers for the client's tests.

- LiveServer: the all-in-one Driftwise server (`driftwise serve`: running_app with its own local
  Triton and Milvus Lite in a temporary directory) as a child process. A child process, not a
  thread: the test process then imports only driftwise_client, which shows the client needs
  nothing from the server package, and the server does not share the tests' GIL and event loop.
- ScriptedServer: a small real gRPC server (grpc.server, threads) serving the three services with
  scripted outcomes per method (fail with a code, sleep, succeed) and recording each call's
  metadata: for retries, deadlines and credentials, where the real server cannot be made to fail
  on cue.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from driftwise_client import Item, new_item
from driftwise_client.v1 import (
    ingest_service_pb2,
    ingest_service_pb2_grpc,
    profile_service_pb2,
    profile_service_pb2_grpc,
    ranking_service_pb2,
    ranking_service_pb2_grpc,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVER_PYTHON = os.environ.get("DRIFTWISE_SERVER_PYTHON", sys.executable)


REQUIRE_LIVE = os.environ.get("DRIFTWISE_CLIENT_REQUIRE_LIVE") == "1"


def server_available() -> bool:
    """True if the server package can be imported by SERVER_PYTHON (a subprocess: not in here)."""
    probe = subprocess.run([SERVER_PYTHON, "-c", "import driftwise.server"], capture_output=True)
    return probe.returncode == 0


class LiveServer:
    """`driftwise serve` on a free (or given) loopback port, with data in `data_dir`."""

    READY = re.compile(r"serving on (\S+:\d+)")

    def __init__(self, data_dir: Path, port: int = 0, startup_timeout: float = 300.0) -> None:
        self.data_dir = data_dir
        self.port = port
        self.startup_timeout = startup_timeout
        self.target = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = data_dir / "serve.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log = self._log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                SERVER_PYTHON,
                "-m",
                "driftwise.cli",
                "--data-dir",
                str(self.data_dir),
                "serve",
                "--port",
                str(self.port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its Triton child is in the same group: stopped together
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            match = self.READY.search(self.log())
            if match:
                self.target = match.group(1)
                self.port = int(self.target.rsplit(":", 1)[1])
                return
            if self._proc.poll() is not None:
                raise RuntimeError(f"driftwise serve exited with {self._proc.returncode}:\n{self.log()}")
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"driftwise serve not ready in {self.startup_timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (graceful: health NOT_SERVING, drain, stop Triton); SIGKILL to the group if stuck."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- the live server's test catalogue -----------------------------------------------------------

# A small catalogue in three categories: enough for pages, filters and personalisation, encoded in
# about a second by the local Triton.
MOVIES = [
    ("Alien", "A crew in deep space meets a deadly alien creature", ["sci-fi", "horror"]),
    ("Aliens", "Marines fight alien creatures on a distant colony", ["sci-fi", "action"]),
    ("Blade Runner", "A detective hunts replicants in a future city", ["sci-fi", "noir"]),
    ("Star Wars", "Rebels fight an empire across the galaxy with starships", ["sci-fi", "adventure"]),
    ("The Matrix", "A hacker learns reality is a computer simulation", ["sci-fi", "action"]),
    ("2001: A Space Odyssey", "Astronauts and a rogue computer on a mission to Jupiter", ["sci-fi"]),
    ("Interstellar", "Astronauts travel through a wormhole to find a new home planet", ["sci-fi", "drama"]),
    ("Toy Story", "Toys come to life when their owner is away", ["animation", "children", "comedy"]),
    ("Finding Nemo", "A clownfish searches the ocean for his lost son", ["animation", "children"]),
    (
        "The Lion King",
        "A young lion prince flees and returns to claim his kingdom",
        ["animation", "children"],
    ),
    ("Shrek", "An ogre rescues a princess with a talkative donkey", ["animation", "comedy"]),
    ("Up", "An old man flies his house with balloons to South America", ["animation", "adventure"]),
    ("The Godfather", "The aging patriarch of a crime dynasty hands over to his son", ["crime", "drama"]),
    ("Heat", "A detective and a professional thief face off in Los Angeles", ["crime", "action"]),
    ("Pulp Fiction", "Interlocking stories of Los Angeles criminals", ["crime", "comedy"]),
    ("Casablanca", "A nightclub owner in wartime Morocco meets his former lover", ["romance", "drama"]),
    ("Notting Hill", "A bookseller falls for a famous film actress", ["romance", "comedy"]),
    ("Titanic", "Lovers from different classes aboard the doomed ship", ["romance", "drama"]),
]
BOOKS = [
    ("Dune", "Politics and prophecy on a desert planet that produces spice", ["sci-fi"]),
    ("Foundation", "A mathematician plans to shorten a galactic dark age", ["sci-fi"]),
    ("Neuromancer", "A washed-up hacker is hired for one last job in cyberspace", ["sci-fi", "cyberpunk"]),
    ("The Left Hand of Darkness", "An envoy on a wintry planet whose people have no fixed sex", ["sci-fi"]),
    ("Pride and Prejudice", "Elizabeth Bennet and Mr Darcy overcome pride", ["romance", "classic"]),
    ("Emma", "A matchmaker meddles in the love lives of her friends", ["romance", "classic"]),
    ("The Hobbit", "A hobbit joins dwarves to reclaim a treasure from a dragon", ["fantasy", "adventure"]),
    ("A Wizard of Earthsea", "A young wizard unleashes a shadow and must hunt it", ["fantasy"]),
    ("Gone Girl", "A wife disappears and her husband becomes the suspect", ["crime", "thriller"]),
    ("The Big Sleep", "Detective Philip Marlowe untangles a blackmail case", ["crime", "noir"]),
    ("The Very Hungry Caterpillar", "A caterpillar eats through a week of food", ["children"]),
]
GAMES = [
    ("Half-Life", "A physicist fights aliens after an experiment goes wrong", ["sci-fi", "shooter"]),
    ("Portal", "Solve puzzles with a portal gun under a sarcastic computer", ["sci-fi", "puzzle"]),
    ("Mass Effect", "A commander unites the galaxy against ancient machines", ["sci-fi", "rpg"]),
    ("Stardew Valley", "Restore a farm and befriend a small town", ["simulation", "cozy"]),
    ("The Legend of Zelda", "A hero explores a fantasy kingdom to defeat evil", ["fantasy", "adventure"]),
    ("Tetris", "Falling blocks fill lines", ["puzzle"]),
]


def catalogue() -> list[Item]:
    items: list[Item] = []
    for category, rows in (("movie", MOVIES), ("book", BOOKS), ("game", GAMES)):
        for i, (title, description, tags) in enumerate(rows):
            items.append(
                new_item(
                    f"{category}-{i}",
                    title,
                    description=description,
                    tags=tags,
                    category=category,
                    attributes={"source": "client-tests"},
                )
            )
    return items


# -- the scripted server ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one call gets: a delay, then a status (None: success)."""

    code: grpc.StatusCode | None = None
    message: str = ""
    delay: float = 0.0
    violations: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Call:
    method: str
    metadata: dict[str, str | bytes]
    time: float


class Script:
    """Outcomes queued per method (a method without queued outcomes succeeds) and the calls seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: dict[str, deque[Outcome]] = defaultdict(deque)
        self._always: dict[str, Outcome] = {}
        self.calls: list[Call] = []

    def fail(self, method: str, *outcomes: Outcome) -> None:
        with self._lock:
            self._outcomes[method].extend(outcomes)

    def always(self, method: str, outcome: Outcome) -> None:
        with self._lock:
            self._always[method] = outcome

    def count(self, method: str) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.method == method)

    def enter(self, method: str, context: grpc.ServicerContext) -> None:
        """Record the call, then apply its outcome (returns only for success)."""
        with self._lock:
            self.calls.append(Call(method, dict(context.invocation_metadata()), time.monotonic()))
            queued = self._outcomes[method]
            outcome = queued.popleft() if queued else self._always.get(method)
        if outcome is None:
            return
        if outcome.delay:
            time.sleep(outcome.delay)
        if outcome.code is None:
            return
        details = [
            _pack(error_details_pb2.ErrorInfo(reason=outcome.code.name.replace("_", ""), domain="test"))
        ]
        if outcome.violations:
            details.append(
                _pack(
                    error_details_pb2.BadRequest(
                        field_violations=[
                            error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                            for f, d in outcome.violations
                        ]
                    )
                )
            )
        status = status_pb2.Status(code=outcome.code.value[0], message=outcome.message, details=details)
        context.abort_with_status(rpc_status.to_status(status))


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


class _Ingest(ingest_service_pb2_grpc.IngestServiceServicer):
    def __init__(self, script: Script) -> None:
        self.script = script

    def UpsertItems(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.script.enter("UpsertItems", context)
        return ingest_service_pb2.UpsertItemsResponse(upserted_count=len(request.items))

    def IngestEvents(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.script.enter("IngestEvents", context)
        return ingest_service_pb2.IngestEventsResponse(
            acks=[ingest_service_pb2.EventAck(event_id=e.event_id, profile_version=1) for e in request.events]
        )


class _Profiles(profile_service_pb2_grpc.ProfileServiceServicer):
    def __init__(self, script: Script) -> None:
        self.script = script

    def GetProfile(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.script.enter("GetProfile", context)
        return profile_service_pb2.GetProfileResponse(
            profile=profile_service_pb2.Profile(user_id=request.user_id, version=7)
        )

    def WatchProfile(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        self.script.enter("WatchProfile", context)
        yield profile_service_pb2.WatchProfileResponse(
            profile=profile_service_pb2.Profile(user_id=request.user_id, version=1)
        )


class _Ranking(ranking_service_pb2_grpc.RankingServiceServicer):
    def __init__(self, script: Script) -> None:
        self.script = script

    def Recommend(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.script.enter("Recommend", context)
        return ranking_service_pb2.RecommendResponse(
            items=[ranking_service_pb2.ScoredItem(item_id="i1", score=1.0)], recommendation_id="rec-1"
        )

    def StreamFeedback(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        self.script.enter("StreamFeedback", context)
        for request in request_iterator:
            yield ranking_service_pb2.StreamFeedbackResponse(event_id=request.event.event_id, recorded=True)


class ScriptedServer:
    """A real gRPC server on 127.0.0.1 serving scripted versions of the three services."""

    def __init__(
        self, script: Script | None = None, credentials: grpc.ServerCredentials | None = None
    ) -> None:
        self.script = script or Script()
        self.credentials = credentials
        self.port = 0
        self._server: grpc.Server | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> ScriptedServer:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        ingest_service_pb2_grpc.add_IngestServiceServicer_to_server(_Ingest(self.script), server)
        profile_service_pb2_grpc.add_ProfileServiceServicer_to_server(_Profiles(self.script), server)
        ranking_service_pb2_grpc.add_RankingServiceServicer_to_server(_Ranking(self.script), server)
        address = f"127.0.0.1:{port or self.port}"
        if self.credentials is None:
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, self.credentials)
        if self.port == 0:
            raise RuntimeError(f"could not bind {address}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
