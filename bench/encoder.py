"""Encoder benchmark: in-process vs Triton, torch vs ONNX Runtime fp32 vs int8, side by side.

    .venv/bin/python bench/encoder.py [--texts 256] [--batches 1,8,32,64] [--concurrency 1,8,32]

All variants run in ONE process run on the same MovieLens item texts, cell after cell, so the
ratios compare like with like on a noisy machine. Each cell sends `--texts` texts as requests of
`batch` texts from `concurrency` concurrent callers and reports texts/s and per-request p50/p99.
Triton variants go through TritonTextEncoder with its cache off (what the services use); its
client-side coalescing is on, so the mean batch Triton saw is printed too. In-process variants
run one embedder on one thread (the Triton instances are single-threaded too), so concurrent
callers queue. Agreement: mean and minimum cosine of each variant to in-process torch fp32.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from driftwise.datasets.movielens import load_movies
from driftwise.engine import NewItem
from driftwise.inference.encoder import TritonTextEncoder
from driftwise.inference.in_process_encoder import InProcessTextEncoder
from driftwise.inference.triton_server import LocalTritonServer
from driftwise.settings import REPO_ROOT
from driftwise_triton.onnx_embedder import OnnxEmbedder

Embed = Callable[[list[str]], Awaitable[npt.NDArray[np.float32]]]
REPOSITORY = REPO_ROOT / "model_repository"
TRITON_MODELS = {
    "triton torch fp32": "text_encoder",
    "triton ORT fp32": "text_encoder_onnx",
    "triton ORT int8": "text_encoder_onnx_int8",
}


@dataclass
class Cell:
    variant: str
    batch: int
    concurrency: int
    texts_per_s: float
    p50_ms: float
    p99_ms: float
    mean_batch: float | None = None


class InProcessOnnx:
    """OnnxEmbedder on one worker thread, like InProcessTextEncoder does for torch."""

    def __init__(self, model: str) -> None:
        self._embedder = OnnxEmbedder(REPOSITORY / model / "1" / "model.onnx", num_threads=1)
        self._lock = asyncio.Lock()

    async def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        async with self._lock:
            return await asyncio.to_thread(self._embedder.embed, texts)


async def run_cell(
    embed: Embed, texts: Sequence[str], batch: int, concurrency: int
) -> tuple[float, list[float]]:
    requests = [list(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    latencies: list[float] = []
    queue = iter(requests)

    async def worker() -> None:
        for request in queue:
            started = time.perf_counter()
            await embed(request)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=256, help="texts per cell")
    parser.add_argument("--batches", default="1,8,32,64")
    parser.add_argument("--concurrency", default="1,8,32")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    movies = load_movies()
    texts = [NewItem(m.item_id, m.title, tags=m.tags).text() for m in movies[: args.texts]]
    agreement_texts = [NewItem(m.item_id, m.title, tags=m.tags).text() for m in movies[::19][:512]]

    print(f"starting Triton with {', '.join(TRITON_MODELS.values())} ...", flush=True)
    server = LocalTritonServer(REPOSITORY, models=list(TRITON_MODELS.values()))
    await asyncio.to_thread(server.start)
    encoders = {
        name: TritonTextEncoder(server.grpc_url, model_name=model, cache_size=0, max_in_flight=8)
        for name, model in TRITON_MODELS.items()
    }
    torch_inproc = InProcessTextEncoder(num_threads=1)
    variants: dict[str, Embed] = {
        "in-process torch fp32": torch_inproc.encode,
        "in-process ORT fp32": InProcessOnnx("text_encoder_onnx").encode,
        "in-process ORT int8": InProcessOnnx("text_encoder_onnx_int8").encode,
        **{name: enc.encode for name, enc in encoders.items()},
    }
    try:
        reference = await torch_inproc.encode(agreement_texts)
        agreement = {}
        for name, embed in variants.items():
            await embed(texts[:64])  # warm up
            cos = np.sum(await embed(agreement_texts) * reference, axis=1)
            agreement[name] = (float(cos.mean()), float(cos.min()))

        cells: list[Cell] = []
        for batch in batches:
            for concurrency in concurrencies:
                for name, embed in variants.items():
                    enc = encoders.get(name)
                    before = (enc.stats.requests, enc.stats.sent_texts) if enc else (0, 0)
                    wall, latencies = await run_cell(embed, texts, batch, concurrency)
                    mean_batch = None
                    if enc:
                        sent = enc.stats.requests - before[0]
                        mean_batch = (enc.stats.sent_texts - before[1]) / sent if sent else 0.0
                    cells.append(
                        Cell(
                            name,
                            batch,
                            concurrency,
                            len(texts) / wall,
                            percentile(latencies, 50),
                            percentile(latencies, 99),
                            mean_batch,
                        )
                    )
                    print(
                        f"  batch {batch:>2} x {concurrency:>2} callers  {name:<22} "
                        f"{cells[-1].texts_per_s:7.1f} texts/s",
                        flush=True,
                    )
    finally:
        for enc in encoders.values():
            await enc.close()
        await torch_inproc.close()
        await asyncio.to_thread(server.stop)
    report(cells, agreement, list(variants))


def report(cells: list[Cell], agreement: dict[str, tuple[float, float]], names: list[str]) -> None:
    base = {(c.batch, c.concurrency): c.texts_per_s for c in cells if c.variant == "in-process torch fp32"}
    print("\n| batch | callers | variant | texts/s | x in-process torch | p50 ms | p99 ms | Triton batch |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for c in cells:
        ratio = c.texts_per_s / base[(c.batch, c.concurrency)]
        seen = "" if c.mean_batch is None else f"{c.mean_batch:.1f}"
        print(
            f"| {c.batch} | {c.concurrency} | {c.variant} | {c.texts_per_s:.1f} | {ratio:.2f} | "
            f"{c.p50_ms:.1f} | {c.p99_ms:.1f} | {seen} |"
        )
    print("\n| variant | mean cosine to torch fp32 | min cosine |")
    print("|---|---:|---:|")
    for name in names:
        mean, low = agreement[name]
        print(f"| {name} | {mean:.5f} | {low:.5f} |")
    print("\nTriton overhead vs the same runtime in-process (1 caller; < 1.00 means Triton is slower):")
    for runtime in ("torch fp32", "ORT fp32", "ORT int8"):
        for batch in sorted({c.batch for c in cells}):
            pick = {c.variant: c.texts_per_s for c in cells if c.batch == batch and c.concurrency == 1}
            served, local = pick.get(f"triton {runtime}"), pick.get(f"in-process {runtime}")
            if served and local:
                print(f"  {runtime:<10} batch {batch:>2}: Triton/in-process = {served / local:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
