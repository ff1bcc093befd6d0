"""MovieLens (ml-latest-small format) as Driftwise items and events.

Items: title + genres + the most frequent user tags; created at January 1st of the title's year.
Events: one per rating at its timestamp. Rating -> event type: >= 4.5 LIKE, >= 3.0 VIEW,
>= 2.0 SKIP (weak negative), below DISLIKE. Events are ordered by timestamp, ties broken by file
order (a stable, documented rule: 16% of consecutive ratings share a second).
"""

from __future__ import annotations

import calendar
import csv
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from driftwise.model.events import EventType
from driftwise.settings import REPO_ROOT

DEFAULT_PATH = REPO_ROOT / "data" / "ml-latest-small"
_YEAR = re.compile(r"\((\d{4})\)\s*$")
TAGS_PER_MOVIE = 8


@dataclass(frozen=True, slots=True)
class Movie:
    item_id: str
    title: str
    tags: tuple[str, ...]  # genres first, then user tags
    create_time: float | None


@dataclass(frozen=True, slots=True)
class Rating:
    event_id: str
    user_id: str
    item_id: str
    rating: float
    time: float
    type: EventType


def event_type(rating: float) -> EventType:
    if rating >= 4.5:
        return EventType.LIKE
    if rating >= 3.0:
        return EventType.VIEW
    if rating >= 2.0:
        return EventType.SKIP
    return EventType.DISLIKE


def load_movies(path: Path = DEFAULT_PATH) -> list[Movie]:
    tags: dict[str, Counter[str]] = defaultdict(Counter)
    with open(path / "tags.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            tags[row["movieId"]][row["tag"].strip().lower()] += 1
    movies = []
    with open(path / "movies.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            genres = [g for g in row["genres"].split("|") if g != "(no genres listed)"]
            user_tags = [t for t, _ in tags[row["movieId"]].most_common(TAGS_PER_MOVIE)]
            year = _YEAR.search(row["title"])
            created = float(calendar.timegm((int(year.group(1)), 1, 1, 0, 0, 0))) if year else None
            movies.append(Movie(row["movieId"], row["title"].strip(), (*genres, *user_tags), created))
    return movies


def load_ratings(path: Path = DEFAULT_PATH) -> list[Rating]:
    """All ratings in time order (ties in file order)."""
    with open(path / "ratings.csv", newline="", encoding="utf-8") as f:
        rows = [
            Rating(
                f"ml-{r['userId']}-{r['movieId']}",
                r["userId"],
                r["movieId"],
                float(r["rating"]),
                float(r["timestamp"]),
                event_type(float(r["rating"])),
            )
            for r in csv.DictReader(f)
        ]
    return sorted(rows, key=lambda r: r.time)  # sorted() is stable: ties keep file order
