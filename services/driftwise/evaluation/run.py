"""`driftwise eval`: Driftwise as it serves, beside baselines, on one leave-one-out split.

Driftwise is measured by what `Recommend` returns (`driftwise.evaluation.served`): the test
phase's training data is replayed into a Driftwise app in this process, started on the given
settings with a fresh data dir (a local Triton, Milvus Lite: the code every server runs, the
self-tuning at its refit included), and each evaluated user gets Recommend(count=10) as of the
held-out rating's time. There is no other Driftwise scorer: what is measured is what serves.

Rows beside it, on the same engine (each a refit with other settings, the same requests again):
- "as configured": the configured ranking settings, self-tuning off;
- "without <component>": the tuned settings with one score component's weight at 0.

Baselines rank the full catalogue on the same split (`protocol.evaluate`): popularity, item-to-
item co-occurrence (item-kNN), and opt-in SASRec and BERT4Rec (transformers, trained on 2 cores
for tens of minutes).

New items: the share of served lists that hold an item nobody had interacted with in the log.
With ``cold_items``, a seeded ``cold_fraction`` of the test targets is removed from everybody's
training data and a second replay scores the users whose target is one of them: an ID-based
model cannot recommend an item it never saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from driftwise.datasets.movielens import Movie, Rating, load_movies, load_ratings
from driftwise.evaluation.baselines import item_knn, popularity
from driftwise.evaluation.protocol import Phase, ScoreFn, Split, evaluate, leave_one_out
from driftwise.evaluation.served import EngineBackend, Replay, Served, in_process, score
from driftwise.model.ranking import WEIGHT_FIELDS, component_weights
from driftwise.model.tuning import TuningReport
from driftwise.settings import ServerSettings, Settings

if TYPE_CHECKING:  # torch and the server are imported only when used
    from driftwise.engine import Engine
    from driftwise.evaluation.transformer import SequenceModelConfig

Report = Callable[[str], None]


@dataclass(frozen=True)
class EvalOptions:
    dataset: Path
    settings: Settings = field(default_factory=Settings)  # the engine's; data_dir and port are replaced
    sasrec: bool = False  # opt-in: minutes of training on 2 cores
    bert4rec: bool = False  # opt-in: minutes of training on 2 cores
    sequence_epochs: int | None = None  # cap for both transformers; None: SequenceModelConfig's
    ablations: bool = True
    cold_items: bool = False  # opt-in: a second replay
    cold_fraction: float = 0.1
    seed: int = 0


@dataclass
class EvalResult:
    dataset: str
    users: int
    items: int
    test: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> metrics
    validation: dict[str, dict[str, float]] = field(default_factory=dict)  # baselines
    cold: dict[str, dict[str, float]] = field(default_factory=dict)
    self_tuning: dict[str, object] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


def served_metrics(served: Served) -> dict[str, float]:
    """HR, NDCG and MRR at 10 of what Recommend returned, with the standard error of HR@10."""
    n = served.users
    mrr = sum(1.0 / r for r in served.ranks.values() if r) / n if n else 0.0
    return {
        "hr@10": served.hr,
        "ndcg@10": served.ndcg,
        "mrr@10": mrr,
        "hr@10_se": float(np.sqrt(served.hr * (1 - served.hr) / n)) if n else 0.0,
        "lists with a new item": served.lists_with_new_items / n if n else 0.0,
    }


def tuning_summary(report: TuningReport) -> dict[str, object]:
    out: dict[str, object] = {"status": report.status.name.lower(), "chosen": dict(report.chosen)}
    if report.rejected:
        out["rejected"] = dict(report.rejected)
    for name in ("defaults_tune", "chosen_tune", "defaults_report", "chosen_report"):
        quality = getattr(report, name)
        if quality is not None:
            out[name] = {"users": quality.users, "hr@10": quality.hr, "ndcg@10": quality.ndcg}
    out["seconds"] = report.seconds
    return out


@contextlib.asynccontextmanager
async def _engine(options: EvalOptions) -> AsyncIterator[Engine]:
    """A Driftwise app in this process on the given settings, with a fresh data dir."""
    from driftwise.server import running_app

    with tempfile.TemporaryDirectory(prefix="driftwise-eval-") as data_dir:
        settings = options.settings.model_copy(
            update={"data_dir": Path(data_dir), "server": ServerSettings(host="127.0.0.1", port=0)}
        )
        async with running_app(settings) as app:
            yield app.engine


async def served_driftwise(options: EvalOptions, replay: Replay, result: EvalResult, report: Report) -> None:
    """The served rows: the replay into an app in this process, then the same requests again
    with other ranking settings (each a refit on the same log)."""
    async with _engine(options) as engine:
        report(f"replaying {len(replay.events)} events into Driftwise ...")
        t = time.perf_counter()
        served = await in_process(engine, replay)
        result.seconds["driftwise"] = time.perf_counter() - t
        tuned = engine.refitted
        assert tuned is not None
        result.test["driftwise (served)"] = served_metrics(served)
        result.self_tuning = tuning_summary(tuned.tuning)
        report(tuned.tuning.summary())
        if not options.ablations:
            return
        variants = {"driftwise, as configured (no self-tuning)": engine.settings.ranking}
        for name, weight in component_weights(tuned.ranking).items():
            if weight:
                off = tuned.ranking.model_copy(update={WEIGHT_FIELDS[name]: 0.0})
                variants[f"driftwise without {name}"] = off
        backend = EngineBackend(engine)
        for label, ranking in variants.items():
            await engine.refit_with(ranking)
            result.test[label] = served_metrics(await score(backend, replay))
            report(f"{label}: HR@10 {result.test[label]['hr@10']:.4f}")
        engine.refitted = tuned


def run_evaluation(options: EvalOptions, report: Report = print) -> EvalResult:
    started = time.perf_counter()
    movies = load_movies(options.dataset)
    ratings = load_ratings(options.dataset)
    split = leave_one_out(ratings, [m.item_id for m in movies])
    result = EvalResult(str(options.dataset), len(split.evaluated_users), split.n_items)

    def timed(name: str, fn: Callable[[], None]) -> None:
        t = time.perf_counter()
        fn()
        result.seconds[name] = time.perf_counter() - t
        report(f"{name}: {result.seconds[name]:.0f} s")

    def baseline(name: str, make: Callable[[Split, Phase], ScoreFn]) -> None:
        for phase in ("validation", "test"):
            metrics = evaluate(make(split, phase), split, phase)
            (result.validation if phase == "validation" else result.test)[name] = metrics

    timed("popularity", lambda: baseline("popularity", popularity))
    timed("item_knn", lambda: baseline("item_knn", item_knn))
    if options.sasrec:
        from driftwise.evaluation.sasrec import sasrec

        config = sequence_config(options)
        timed("sasrec", lambda: baseline("sasrec", lambda data, phase: sasrec(data, phase, config)))
    if options.bert4rec:
        from driftwise.evaluation.bert4rec import bert4rec, bert4rec_config

        cloze = bert4rec_config(options.sequence_epochs)
        timed("bert4rec", lambda: baseline("bert4rec", lambda data, phase: bert4rec(data, phase, cloze)))

    asyncio.run(served_driftwise(options, Replay.of(movies, ratings), result, report))
    if options.cold_items:
        timed("cold_items", lambda: cold_items(options, movies, ratings, split, result, report))
    result.seconds["total"] = time.perf_counter() - started
    return result


def cold_items(
    options: EvalOptions,
    movies: Sequence[Movie],
    ratings: Sequence[Rating],
    split: Split,
    result: EvalResult,
    report: Report,
) -> None:
    """HR@10 on the users whose test item nobody interacted with in the training data."""
    cold = cold_targets(split, options.cold_fraction, options.seed)
    replay = Replay.of(movies, ratings)
    cold_replay = Replay(
        replay.movies,
        [r for r in replay.events if r.item_id not in cold],
        {u: t for u, t in replay.targets.items() if t.item_id in cold},
    )
    served = asyncio.run(_served(options, cold_replay))
    result.cold["driftwise (served)"] = {"hr@10": served.hr, "users": float(served.users), "items": len(cold)}
    # the baselines cannot score an item without interactions: on the same users, by construction
    result.cold["popularity"] = result.cold["item_knn"] = {"hr@10": 0.0, "users": float(served.users)}
    report(f"cold items: HR@10 {served.hr:.4f} on {served.users} users")


async def _served(options: EvalOptions, replay: Replay) -> Served:
    async with _engine(options) as engine:
        return await in_process(engine, replay)


def cold_targets(split: Split, fraction: float, seed: int) -> set[str]:
    """A seeded random ``fraction`` of the items that are someone's test target."""
    targets = sorted(set(split.test.values()), key=split.item_index.__getitem__)
    rng = np.random.default_rng(seed)
    return {targets[i] for i in rng.choice(len(targets), int(len(targets) * fraction), replace=False)}


def sequence_config(options: EvalOptions) -> SequenceModelConfig:
    from driftwise.evaluation.transformer import SequenceModelConfig

    if options.sequence_epochs is None:
        return SequenceModelConfig()
    return SequenceModelConfig(max_epochs=options.sequence_epochs)
