"""BERT4Rec on ml-latest-small, timed and evaluated as ``driftwise eval --bert4rec`` does.

    PYTHONPATH=services OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/bert4rec.py OUT [--dataset DIR]

Split: ``leave_one_out`` of the ratings with the movies.csv catalogue (as ``driftwise eval``). The
model is ``driftwise.evaluation.bert4rec`` with its ``DEFAULT_CONFIG`` and ``MASK_PROB``, trained with
one torch thread; the best epoch's weights are also written to ``OUT/best.pt`` whenever validation
HR@10 improves (so a run cut short still has them). Prints one line per epoch, then the
``protocol.evaluate`` metrics of both phases and the training seconds (validation included), also
written to ``OUT/result.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from driftwise.datasets.movielens import DEFAULT_PATH, load_movies, load_ratings
from driftwise.evaluation.bert4rec import DEFAULT_CONFIG, MASK_PROB, Bert4RecModel, cloze_windows
from driftwise.evaluation.protocol import evaluate, leave_one_out
from driftwise.evaluation.sasrec import early_stopping_score, sequence_score_fn, training_sequences
from driftwise.evaluation.sequence_training import EpochStats, fit
from driftwise.evaluation.transformer import SequenceModel


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    movies = load_movies(args.dataset)
    split = leave_one_out(load_ratings(args.dataset), [m.item_id for m in movies])
    config = DEFAULT_CONFIG
    print(config, "mask_prob", MASK_PROB, flush=True)
    sequences = training_sequences(split)
    n = split.n_items
    score = early_stopping_score(split)
    best = {"score": -1.0, "epoch": 0}
    epochs = [0]

    def validate(model: SequenceModel) -> float:
        epochs[0] += 1
        s = score(model)
        if s > best["score"]:
            best.update(score=s, epoch=epochs[0])
            torch.save(model.state_dict(), out / "best.pt")
            (out / "best.json").write_text(json.dumps(best))
        return s

    def report(e: EpochStats) -> None:
        print(f"epoch {e.epoch} loss {e.loss:.4f} val_hr@10 {e.score:.4f} {e.seconds:.1f}s", flush=True)

    started = time.perf_counter()
    model = fit(
        lambda: Bert4RecModel(n, config),
        lambda rng: cloze_windows(sequences, config.max_len, MASK_PROB, n + 1, rng),
        config,
        validate=validate,
        on_epoch=report,
        num_threads=1,
    )
    result: dict[str, object] = {
        "epochs": epochs[0],
        "best_epoch": best["epoch"],
        "train_seconds": time.perf_counter() - started,
    }
    for phase in ("validation", "test"):
        result[phase] = evaluate(sequence_score_fn(model, split, phase), split, phase)
    print(json.dumps(result, indent=2), flush=True)
    (out / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
