"""Sequence models on ml-latest-small: SASRec (ID mode) and the content-mode model, timed and evaluated.

    .venv/bin/python bench/sequence_models.py [--modes id,content] [--set lr=2e-3 --set dropout=0.3 ...]

Split: ``leave_one_out(load_ratings())`` (the protocol of driftwise.evaluation.protocol). Each model is
trained once, on the validation phase's training data, early-stopped on validation HR@10, and
evaluated with ``protocol.evaluate`` on the validation and the test phase (the test phase feeds the
validation item as history, no retraining; see driftwise.evaluation.sasrec). Training wall time
includes the per-epoch validation.

Content vectors: all-MiniLM-L6-v2 (``MiniLMEmbedder``) of ``"{title}. {genre, genre, ...}"`` from
movies.csv, cached in ``--vectors`` (default /tmp/ml_item_vectors.npy, rows in movies.csv order, the
movie ids next to it in a ``.ids`` file); encoding the 9,742 texts takes minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from driftwise.datasets.movielens import DEFAULT_PATH, load_ratings
from driftwise.evaluation.protocol import Split, evaluate, leave_one_out
from driftwise.evaluation.sasrec import sequence_score_fn, train_on_split
from driftwise.evaluation.sequence_training import EpochStats
from driftwise.evaluation.transformer import SequenceModelConfig


def movie_texts(path: Path) -> tuple[list[str], list[str]]:
    """movies.csv ids and their texts ``"{title}. {genres}"`` (genres from the genres column only)."""
    ids, texts = [], []
    with open(path / "movies.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            genres = [g for g in row["genres"].split("|") if g != "(no genres listed)"]
            ids.append(row["movieId"])
            texts.append(f"{row['title'].strip()}. {', '.join(genres)}")
    return ids, texts


def item_vectors(split: Split, cache: Path, data: Path) -> npt.NDArray[np.float32]:
    """``(split.n_items, 384)`` MiniLM vectors aligned with ``split.items`` (encoded once, then cached)."""
    ids_file = cache.with_suffix(".ids")
    ids, texts = movie_texts(data)
    if cache.exists() and ids_file.exists() and ids_file.read_text(encoding="utf-8").split("\n") == ids:
        vectors = np.load(cache)
    else:
        from driftwise_triton.minilm import MiniLMEmbedder

        started = time.perf_counter()
        vectors = MiniLMEmbedder().embed(texts)
        print(f"encoded {len(texts)} movie texts in {time.perf_counter() - started:.0f} s -> {cache}")
        np.save(cache, vectors)
        ids_file.write_text("\n".join(ids), encoding="utf-8")
    row = {movie: i for i, movie in enumerate(ids)}
    aligned: npt.NDArray[np.float32] = vectors[[row[item] for item in split.items]].astype(np.float32)
    return aligned


def parse_overrides(pairs: list[str]) -> SequenceModelConfig:
    fields = {f.name: f.type for f in dataclasses.fields(SequenceModelConfig)}
    values: dict[str, int | float] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in fields:
            raise SystemExit(f"unknown config field {name!r}; known: {', '.join(fields)}")
        values[name] = float(value) if fields[name] == "float" else int(value)
    return SequenceModelConfig(**values)  # type: ignore[arg-type]


def run(
    name: str,
    split: Split,
    config: SequenceModelConfig,
    vectors: npt.NDArray[np.float32] | None,
    threads: int | None,
) -> None:
    def report(stats: EpochStats) -> None:
        score = f"val hr@10 {stats.score:.4f}"
        print(
            f"  {name} epoch {stats.epoch:2d} loss {stats.loss:.4f} {score} ({stats.seconds:.1f} s)",
            flush=True,
        )

    started = time.perf_counter()
    model = train_on_split(split, config, item_vectors=vectors, on_epoch=report, num_threads=threads)
    seconds = time.perf_counter() - started
    line = [f"{name}: trained in {seconds:.1f} s"]
    for phase in ("validation", "test"):
        m = evaluate(sequence_score_fn(model, split, phase), split, phase)
        line.append(f"{phase} hr@10 {m['hr@10']:.4f} (se {m['hr@10_se']:.4f}) ndcg@10 {m['ndcg@10']:.4f}")
    print(" | ".join(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="id,content", help="comma-separated: id, content")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="config override")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--vectors", type=Path, default=Path("/tmp/ml_item_vectors.npy"))
    args = parser.parse_args()
    config = parse_overrides(args.set)
    print(config)
    split = leave_one_out(load_ratings(args.data))
    for mode in args.modes.split(","):
        if mode == "id":
            run("SASRec (ID)", split, config, None, args.threads)
        elif mode == "content":
            run("content", split, config, item_vectors(split, args.vectors, args.data), args.threads)
        else:
            raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
