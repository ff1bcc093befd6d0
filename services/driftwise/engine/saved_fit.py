"""The last full refit, saved in the data directory so a restart serves it at once.

`<data_dir>/learned-fit.pickle` holds two pickles: a small header (`FitKey` plus the event count)
and the `Refitted` itself, so a stale file is rejected without reading the models. It is written
atomically (a temporary file in the same directory, fsynced, then renamed over the old one), so a
crash leaves the previous fit or the new one, never half of one.

A saved fit is served only when it was fitted for what this server serves now (`FitKey`): the
same file format, encoder (model name and dimension: the item vectors and topic centroids live
in its space), topics (the ones the stored profiles use: the log's `meta` records them), and
interest, ranking and tuning configuration (the served ranking settings are the configured ones
as tuned). A log with fewer events than the fit saw is another log (restored from a backup,
replaced): the fit is ignored too. Otherwise it is served, and the periodic refit catches up with
the events logged since, in the background. Anything else (a missing, corrupt or foreign file)
is ignored with a log line: the server then fits quickly before serving, as without a file.

The file is trusted like the event log beside it (both are this server's own state): pickles
run code when loaded, so the data directory must not be writable by anyone else.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from driftwise.model.refit import Refitted
from driftwise.settings import Settings

log = logging.getLogger(__name__)

FORMAT = 1  # bump when Refitted, Fitted or what they hold change shape
FILE_NAME = "learned-fit.pickle"


@dataclass(frozen=True)
class FitKey:
    """What a saved fit must match to be served."""

    format: int
    encoder: str  # model name and dimension
    topics: str  # the topic model's fingerprint
    config: str  # a digest of the interest, ranking and tuning settings

    @classmethod
    def of(cls, settings: Settings, dimension: int, topics_fingerprint: str) -> FitKey:
        config = "\n".join(
            part.model_dump_json() for part in (settings.interest, settings.ranking, settings.tuning)
        )
        return cls(
            FORMAT,
            f"{settings.triton.model_name}/{dimension}",
            topics_fingerprint,
            hashlib.sha256(config.encode()).hexdigest(),
        )


def save(path: Path, key: FitKey, refitted: Refitted) -> None:
    """Write the fit atomically (blocking: call it off the event loop)."""
    header = {"key": asdict(key), "events": refitted.events}
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(header, f, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(refitted, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def load(path: Path, key: FitKey, logged_events: int) -> Refitted | None:
    """The saved fit, if there is one fitted for `key` on at most `logged_events` events; None
    (with a log line saying why) otherwise."""
    if not path.exists():
        return None
    try:
        with path.open("rb") as f:
            header = pickle.load(f)
            reason = _mismatch(header, key, logged_events)
            if reason is not None:
                log.info("ignoring the saved fit %s: %s", path, reason)
                return None
            refitted = pickle.load(f)
    except Exception as error:  # corrupt, truncated, from another version of the code
        log.warning("ignoring the saved fit %s: unreadable (%s: %s)", path, type(error).__name__, error)
        return None
    if not isinstance(refitted, Refitted) or refitted.events != header["events"]:
        log.warning("ignoring the saved fit %s: not a fit", path)
        return None
    return refitted


def _mismatch(header: object, key: FitKey, logged_events: int) -> str | None:
    if not isinstance(header, dict) or not isinstance(header.get("key"), dict):
        return "no header"
    saved = header["key"]
    for name, value in asdict(key).items():
        if saved.get(name) != value:
            return f"fitted for another {name} ({saved.get(name)!r}, now {value!r})"
    events = header.get("events")
    if not isinstance(events, int) or events > logged_events:
        return f"fitted on {events} events, the log has {logged_events} (another log)"
    return None
