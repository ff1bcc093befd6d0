"""The evaluation's outputs: a markdown table, a JSON file and a PNG plot of the metrics per method."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from driftwise.evaluation.run import EvalResult

COLUMNS = ("hr@10", "ndcg@10", "mrr@10", "hr@20", "ndcg@20", "coverage@10", "lists with a new item")
PLOTTED = ("hr@10", "ndcg@10", "mrr@10")  # what a served list of 10 measures


def table(results: Mapping[str, Mapping[str, float]], columns: tuple[str, ...] = COLUMNS) -> str:
    head = "| method | " + " | ".join(columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    rows = [
        f"| {method} | " + " | ".join(f"{m[c]:.4f}" if c in m else "" for c in columns) + " |"
        for method, m in results.items()
    ]
    return "\n".join([head, rule, *rows])


def cold_table(cold: Mapping[str, Mapping[str, float]]) -> str:
    rows = [f"| {method} | {m['hr@10']:.4f} |" for method, m in cold.items()]
    users = int(next(iter(cold.values()))["users"]) if cold else 0
    head = f"| method (cold items, {users} users) | HR@10 |\n|---|---:|"
    return "\n".join([head, *rows])


def markdown(result: EvalResult) -> str:
    served = result.test.get("driftwise (served)", {})
    tuning = result.self_tuning
    parts = [
        f"Test phase, {result.users} users, {result.items} items, seen items removed. Driftwise rows: "
        "what Recommend(count=10) returned after the replay (served); baselines rank the full catalogue.",
        "",
        table(result.test),
        "",
        f"Standard error of HR@10: {result.test['popularity']['hr@10_se']:.4f} (popularity), "
        f"{served.get('hr@10_se', 0.0):.4f} (Driftwise).",
        "",
        f"Self-tuning ({tuning.get('status', '')}): chose {tuning.get('chosen', {})}; held-out users "
        f"(configured -> chosen): {_halves(tuning)}.",
    ]
    if result.cold:
        parts += ["", cold_table(result.cold)]
    parts += ["", "Seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items())]
    return "\n".join(parts)


def _halves(tuning: Mapping[str, object]) -> str:
    out = []
    for half in ("tune", "report"):
        before, after = tuning.get(f"defaults_{half}"), tuning.get(f"chosen_{half}")
        if isinstance(before, dict) and isinstance(after, dict):
            out.append(
                f"{half} half ({after['users']} users) HR@10 {before['hr@10']:.4f} -> {after['hr@10']:.4f}, "
                f"NDCG@10 {before['ndcg@10']:.4f} -> {after['ndcg@10']:.4f}"
            )
    return "; ".join(out) or "none"


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
    names = ["driftwise (served)", *ablations]
    axes[1].barh(names, [result.test[n]["ndcg@10"] for n in names], color="tab:gray")
    axes[1].invert_yaxis()
    axes[1].set_title("Ablations: NDCG@10 with one part off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
