from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from driftwise.cli import main
from driftwise.evaluation.bert4rec import Bert4RecModel, bert4rec, bert4rec_model, cloze_windows
from driftwise.evaluation.protocol import Split, evaluate, leave_one_out
from driftwise.evaluation.transformer import SequenceModel, SequenceModelConfig

N_ITEMS = 100  # random ranking: HR@10 about 10 / 88 unseen items
CONFIG = SequenceModelConfig(
    max_len=8, hidden=32, blocks=1, ffn_dim=64, dropout=0.1, lr=1e-2, batch_size=32, max_epochs=40, patience=4
)


pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass(frozen=True)
class R:
    user_id: str
    item_id: str
    time: float


@pytest.fixture(scope="module")
def split() -> Split:
    """Item i is always followed by item i + 1 (mod N_ITEMS); no user sees an item twice."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(120):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(6, 20))
        rows += [R(f"u{u}", f"m{(start + j) % N_ITEMS}", float(1000 * u + j)) for j in range(length)]
    return leave_one_out(rows)


def test_bert4rec_learns_the_rule_and_trains_once_per_split(split: Split) -> None:
    validation = evaluate(bert4rec(split, "validation", CONFIG), split, "validation")
    model = bert4rec_model(split, CONFIG)
    test = evaluate(bert4rec(split, "test", CONFIG), split, "test")
    assert bert4rec_model(split, CONFIG) is model  # the test phase reuses the validation-phase model
    assert isinstance(model, Bert4RecModel) and not model.causal
    assert validation["hr@10"] >= 0.9 and test["hr@10"] >= 0.9  # random: about 0.11
    assert validation["mrr@10"] >= 0.5 and test["mrr@10"] >= 0.5
    # the test phase feeds the validation item: the scores are those after it, and they differ
    user = split.evaluated_users[0]
    history = [split.item_index[i] for i in split.history(user, "test")]
    assert history[-1] == split.item_index[split.validation[user]]
    scores = np.asarray(bert4rec(split, "test", CONFIG)(user, split.history(user, "test")))
    np.testing.assert_allclose(scores, model.score_histories([history])[0], atol=1e-5)
    scores[history] = -np.inf  # seen items are filtered by the protocol
    assert int(scores.argmax()) == split.item_index[split.test[user]]  # the validation item's successor


def test_inference_appends_mask_after_the_newest_max_len_minus_one_items() -> None:
    model = Bert4RecModel(20, CONFIG)
    slots = model.pad_histories([list(range(12)), [3, 4], []])
    mask = model.mask_token
    assert mask == 21
    assert slots[0].tolist() == [6, 7, 8, 9, 10, 11, 12, mask]  # items 5..11, +1
    assert slots[1].tolist() == [0, 0, 0, 0, 0, 4, 5, mask]
    assert slots[2].tolist() == [0] * 7 + [mask]
    assert model.output_matrix().shape == (20, CONFIG.hidden)  # [MASK] is not an item to score


def test_attention_is_bidirectional_and_ignores_padding() -> None:
    torch.manual_seed(0)
    bidirectional, causal = Bert4RecModel(20, CONFIG).eval(), SequenceModel(20, CONFIG).eval()
    a = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8]])
    b = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 9]])  # only the newest item differs
    with torch.no_grad():
        for model, sees_the_future in ((bidirectional, True), (causal, False)):
            ha = model.encode(model.embed_items(a), a > 0)
            hb = model.encode(model.embed_items(b), b > 0)
            assert (not torch.allclose(ha[0, 2], hb[0, 2])) == sees_the_future
        # nothing at a padding slot (here its position embedding) reaches a real slot
        h = bidirectional.encode(bidirectional.embed_items(a), a > 0)
        bidirectional.position.weight[:2] += torch.randn(2, CONFIG.hidden)
        moved = bidirectional.encode(bidirectional.embed_items(a), a > 0)
        torch.testing.assert_close(moved[0, 2:], h[0, 2:])
        assert not torch.allclose(moved[0, :2], h[0, :2])


def test_masking_never_touches_padding() -> None:
    rng = np.random.default_rng(1)
    max_len, mask_token, mask_prob = 8, 1000, 0.5
    items, lengths = rng.permutation(999).tolist(), (0, 1, 2, 3, 7, 8, 9, 16, 17, 40)
    ends = np.cumsum(lengths)
    sequences = [items[end - n : end] for n, end in zip(lengths, ends, strict=True)]  # no item twice
    masked_share = []
    for _ in range(20):
        inputs, targets = cloze_windows(sequences, max_len, mask_prob, mask_token, rng)
        padding = inputs == 0
        assert (targets[padding] == -1).all()  # no target at a padding slot
        # padding is a left block of each window, and no item slot is ever turned into padding
        assert (np.diff(padding.astype(int), axis=1) <= 0).all()
        assert (~padding[:, -1]).all()
        assert ((inputs == mask_token) == (targets >= 0)).all()  # masked slots are exactly the targets
        assert (inputs[:, -1] == mask_token).all()  # the newest slot is always masked, as at inference
        unmasked = (inputs > 0) & (inputs != mask_token)
        assert (targets[unmasked] == -1).all()
        # every item of a sequence (n >= 2) is a target at most once per epoch, padding never
        counted = targets[targets >= 0]
        assert len(counted) == len(set(counted.tolist()))
        assert set(counted.tolist()) <= {i for s in sequences if len(s) >= 2 for i in s}
        masked_share.append((targets >= 0).sum() / (~padding).sum())
    assert 0.4 < float(np.mean(masked_share)) < 0.8  # 0.5 of the group items, plus each last slot
    with pytest.raises(ValueError, match="mask_prob"):
        cloze_windows(sequences, max_len, 1.5, mask_token, rng)


def test_eval_bert4rec_flag_reaches_the_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import driftwise.evaluation.run as run

    seen: list[run.EvalOptions] = []

    def capture(options: run.EvalOptions, report: object = None) -> run.EvalResult:
        seen.append(options)
        raise KeyboardInterrupt  # stop before anything is trained or written

    monkeypatch.setattr(run, "run_evaluation", capture)
    for flags, expected in (([], False), (["--bert4rec"], True)):
        with pytest.raises(KeyboardInterrupt):
            main(["--data-dir", str(tmp_path), "eval", "--out", str(tmp_path / "out"), *flags])
        assert seen[-1].bert4rec is expected and seen[-1].sasrec is False
    assert run.EvalOptions(Path("d"), Path("c")).bert4rec is False  # opt-in
