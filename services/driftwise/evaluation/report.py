"""The evaluation's outputs: a markdown table, a JSON file and a PNG plot of the metrics per method."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from driftwise.evaluation.run import EvalResult

COLUMNS = ("hr@10", "ndcg@10", "mrr@10", "hr@20", "ndcg@20", "coverage@10", "diversity@10")
PLOTTED = ("hr@10", "ndcg@10", "mrr@10", "hr@20", "ndcg@20")


def table(results: Mapping[str, Mapping[str, float]], columns: tuple[str, ...] = COLUMNS) -> str:
    head = "| method | " + " | ".join(columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    rows = [
        f"| {method} | " + " | ".join(f"{m[c]:.4f}" if c in m else "" for c in columns) + " |"
        for method, m in results.items()
    ]
    return "\n".join([head, rule, *rows])


def cold_table(cold: Mapping[str, Mapping[str, float]]) -> str:
    rows = [f"| {method} | {m['hr@10']:.4f} | {m['hr@20']:.4f} |" for method, m in cold.items()]
    users = int(next(iter(cold.values()))["users"]) if cold else 0
    head = f"| method (cold items, {users} users) | HR@10 | HR@20 |\n|---|---:|---:|"
    return "\n".join([head, *rows])


def markdown(result: EvalResult) -> str:
    hr = result.test["popularity"]["hr@10"]
    parts = [
        f"Test phase, {result.users} users, {result.items} items, full ranking, seen items removed.",
        "",
        table(result.test),
        "",
        f"Standard error of HR@10 at p={hr:.3f}: {result.test['popularity']['hr@10_se']:.4f} "
        f"(Driftwise: {result.test.get('driftwise', {}).get('hr@10_se', 0.0):.4f}).",
        "",
        "Driftwise weights tuned on validation: "
        + ", ".join(f"{k}={v:g}" for k, v in result.tuned_weights.items()),
    ]
    if result.cold:
        parts += ["", cold_table(result.cold)]
    parts += ["", "Seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items())]
    return "\n".join(parts)


def plot(result: EvalResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    methods = [m for m in result.test if " without " not in m]
    ablations = [m for m in result.test if " without " in m]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        xs = [j + i * width for j in range(len(PLOTTED))]
        axes[0].bar(xs, [result.test[method][c] for c in PLOTTED], width, label=method)
    axes[0].set_xticks([j + 0.4 - width / 2 for j in range(len(PLOTTED))], PLOTTED)
    axes[0].set_title(f"Test metrics ({result.users} users, leave-one-out, full ranking)")
    axes[0].legend()
    names = ["driftwise", *ablations]
    axes[1].barh(names, [result.test[n]["ndcg@10"] for n in names], color="tab:gray")
    axes[1].invert_yaxis()
    axes[1].set_title("Ablations: NDCG@10 with one part off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
