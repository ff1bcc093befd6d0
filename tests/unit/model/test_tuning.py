"""Self-tuning: held-out events, the search, and that what it scores is what Recommend ranks."""

import dataclasses

import numpy as np

from driftwise.model.config import InterestModelConfig, RankingConfig, TuningConfig
from driftwise.model.events import Event, EventType
from driftwise.model.learned import signals_for
from driftwise.model.ranking import rank_for_profile
from driftwise.model.refit import refit
from driftwise.model.topics import TopicModel, normalize_rows
from driftwise.model.tuning import TUNED, Catalogue, Tuner, TuningStatus, _hash, apply_choice, holdouts

INTEREST = InterestModelConfig()
N_ITEMS, DIM = 120, 16


def catalogue(seed: int = 0) -> Catalogue:
    vectors = normalize_rows(np.random.default_rng(seed).normal(size=(N_ITEMS, DIM))).astype(np.float32)
    return Catalogue(tuple(f"i{k}" for k in range(N_ITEMS)), vectors)


TOPICS = TopicModel([f"t{k}" for k in range(4)], catalogue(1).vectors[:4], 0.05)


def chains(users: int, length: int = 8, seed: int = 0) -> dict[str, list[Event]]:
    """Users who watch a run of consecutive items (i_s, i_s+1, ...): what follows what is learnable
    from the log, while the item vectors are random (content says nothing)."""
    rng = np.random.default_rng(seed)
    out = {}
    for u in range(users):
        start = int(rng.integers(N_ITEMS))
        user = f"u{u}"
        out[user] = [
            Event(f"e{k}", user, EventType.LIKE, 1000.0 * u + k, f"i{(start + k) % N_ITEMS}")
            for k in range(length)
        ]
    return out


def tuner(events: dict[str, list[Event]], **options: int) -> Tuner:
    return Tuner(catalogue(), events, TOPICS, INTEREST, TuningConfig(**options), lambda c: 10)


def test_the_most_recent_item_event_is_held_out_with_what_came_before() -> None:
    known = {f"i{k}": k for k in range(5)}

    def user(name: str, *logged: tuple[float, str, EventType]) -> list[Event]:
        return [Event(str(k), name, type_, at, item) for k, (at, item, type_) in enumerate(logged, 1)]

    like, view, click = EventType.LIKE, EventType.VIEW, EventType.CLICK
    events = {
        # logged out of time order: the latest TIME is held out; equal times: the one logged last
        "a": user("a", (5.0, "i0", like), (9.0, "i1", like), (7.0, "i2", view), (9.0, "i3", click)),
        "short": user("short", (1.0, "i0", like), (2.0, "i1", like)),
        "repeat": user("repeat", (1.0, "i0", like), (2.0, "i1", like), (3.0, "i0", like)),
        "unknown": user(
            "unknown", (1.0, "i0", like), (2.0, "i1", like), (3.0, "gone", like), (4.0, "i2", like)
        ),
    }
    held = {h.user_id: h for h in holdouts(events, known, min_history=2, max_users=10)}
    assert set(held) == {"a", "unknown"}  # "short": 1 event before; "repeat": the target was seen
    assert held["a"].target == "i3" and held["a"].at == 9.0
    assert [e.event_id for e in held["a"].history] == ["1", "2", "3"]
    assert [e.item_id for e in held["unknown"].history] == ["i0", "i1"]  # deleted items left out
    # at most max_users, and the same users every time
    assert len(holdouts(events, known, 2, 1)) == 1
    assert holdouts(events, known, 2, 1) == holdouts(dict(reversed(events.items())), known, 2, 1)


def test_tuning_finds_what_the_log_rewards_and_reports_it_on_other_users() -> None:
    # configured without the collaborative signal, on a log where only what follows what predicts
    configured = RankingConfig(collaborative_boost=0.0, transition_mix=0.0)
    t = tuner(chains(240), min_users=100)
    report = t.tune(configured)
    assert report.status is TuningStatus.TUNED
    assert report.chosen["collaborative_boost"] > 0
    assert report.chosen_tune and report.defaults_tune and report.chosen_report and report.defaults_report
    assert report.chosen_tune.users + report.chosen_report.users == report.held_out_users == 240
    assert report.chosen_tune.ndcg > report.defaults_tune.ndcg
    # chosen on one half, better on the other half too: it generalises
    assert report.chosen_report.hr > report.defaults_report.hr + 0.3
    served = apply_choice(configured, report)
    assert served.collaborative_boost == report.chosen["collaborative_boost"]
    assert type(served.cooccurrence_window) is int  # values keep their types


def test_a_choice_that_does_worse_on_the_report_half_is_not_served() -> None:
    # the tune half follows chains (what follows what); the report half watches items near a
    # direction of its own (content): what the tune half rewards is wrong for the other half
    events, vectors = chains(400), catalogue().vectors
    rng = np.random.default_rng(3)
    for user in [u for u in events if _hash(u) % 2 == 1]:
        nearest = np.argsort(-(vectors @ rng.normal(size=DIM)))[:8][::-1]  # the nearest one last
        t0 = 1000.0 * int(user[1:])
        events[user] = [Event(f"e{k}", user, EventType.LIKE, t0 + k, f"i{r}") for k, r in enumerate(nearest)]
    configured = RankingConfig(collaborative_boost=0.0, transition_mix=0.0)
    report = tuner(events, min_users=100).tune(configured)
    assert report.status is TuningStatus.NO_GAIN
    assert report.chosen_tune and report.defaults_tune and report.chosen_report and report.defaults_report
    assert report.chosen_tune.ndcg > report.defaults_tune.ndcg  # it did find something on its half
    assert report.chosen_report.ndcg < report.defaults_report.ndcg
    assert report.chosen == {} and report.rejected["collaborative_boost"] > 0
    assert apply_choice(configured, report) == configured
    assert "kept the defaults" in report.summary()


def test_every_knob_is_a_ranking_setting() -> None:
    # model_copy(update=...) does not validate: a misspelt knob would be tuned without effect
    assert set(RankingConfig.model_fields) >= TUNED


def test_too_few_users_keep_the_configured_settings() -> None:
    configured = RankingConfig(collaborative_boost=0.0)
    t = tuner(chains(30), min_users=100)
    report = t.tune(configured)
    assert t.train_two_tower(15.0) is None  # nothing could give it weight: not trained
    assert report.status is TuningStatus.TOO_FEW_USERS and report.held_out_users == 30
    assert report.chosen == {} and apply_choice(configured, report) == configured


def test_what_is_tuned_is_what_recommend_ranks() -> None:
    """The held-out item's place in the tuner's order, from its cached components, is its place
    in what the serving function (`rank_for_profile`, as Recommend calls it) ranks."""
    events = chains(80, seed=3)
    t = tuner(events, min_users=10)
    places = []
    for config in (
        RankingConfig(),
        RankingConfig(collaborative_boost=3.0, layer_boost=0.1, new_item_slots=2),
    ):
        outcomes = t.score(t.held, config)
        fitted = t.fitted(config)
        for h, outcome in zip(t.held, outcomes, strict=True):
            profile = t.replayed.profiles[h.user_id]
            learned = signals_for(profile, fitted, TOPICS, config)
            seen = t.replayed.seen_sets[h.user_id]
            rows = [*t._nearest_rows[h.user_id], *(t.index[i] for i in learned.followers)]
            candidates = [t._candidates[r] for r in dict.fromkeys(rows) if r not in seen]
            signals = dataclasses.replace(
                learned.signals, collaborative=learned.collaborative([c.item_id for c in candidates])
            )
            ranked = rank_for_profile(
                profile, candidates, TOPICS, at=h.at, count=len(candidates), diversity=0.0,
                config=config, topic_temperature=INTEREST.topic_temperature, signals=signals,
            )  # fmt: skip
            served = [r.item_id for r in ranked]
            place = served.index(h.target) if h.target in served else None
            assert outcome.place(config) == place, h.user_id
            places.append(place)
    # the held-out items land at many places, so the comparison above is not a trivial one
    assert len({p for p in places if p is not None}) > 5 and None in places


def test_refit_serves_the_tuned_settings_and_fits_on_the_whole_log() -> None:
    events = chains(240)
    configured = RankingConfig(collaborative_boost=0.0)
    result = refit(
        catalogue(), events, 1920, TOPICS, INTEREST, configured, TuningConfig(min_users=100), lambda c: 10
    )
    assert result.ranking == apply_choice(configured, result.tuning) != configured
    assert result.fitted is not None
    # fitted on every event, the held-out ones included: i0 -> i1 was logged by some user
    assert result.fitted.cooccurrence.edge("i0", "i1") > 0
    # the next-item two-tower the tuning weighed is the one served
    assert result.fitted.two_tower is not None and result.fitted.two_tower.epochs >= 1
    off = refit(
        catalogue(), events, 1920, TOPICS, INTEREST, configured, TuningConfig(enabled=False), lambda c: 10
    )
    assert off.ranking == configured and off.tuning.status is TuningStatus.DISABLED
    assert off.fitted is not None and off.fitted.two_tower is None  # nothing would weigh it


def test_the_collaborative_signal_equals_the_dense_scores() -> None:
    """signals_for keeps only the nonzero co-occurrence scores (a Learned is remembered per
    profile); looked up, they are the dense scores, and 0 for items the model does not know."""
    events = chains(40, seed=5)
    t = tuner(events, min_users=10)
    config = RankingConfig(collaborative_boost=1.0)
    fitted = t.fitted(config)
    cooccurrence = fitted.cooccurrence
    checked = 0
    for h in t.held[:10]:
        profile = t.replayed.profiles[h.user_id]
        learned = signals_for(profile, fitted, TOPICS, config)
        push = config.collaborative_negatives_push
        pairs = [(r.item_id, r.weight if push else 1.0) for r in profile.recent]
        dense = cooccurrence.scores(pairs, config.collaborative_half_life_events)
        ids = [*cooccurrence.items, "not-an-item"]
        expected = [*dense, 0.0]
        assert learned.collaborative(ids).tolist() == expected
        checked += int(dense.any())
    assert checked  # some profiles had followers
