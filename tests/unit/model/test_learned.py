"""What a refit learns: trending popularity counts positive events in a window before the request."""

import numpy as np

from driftwise.model.learned import ItemTimes

DAY = 86_400.0


def test_trending_counts_the_window_before_the_request_only() -> None:
    times = ItemTimes.fit(
        [("old", 1 * DAY), ("old", 2 * DAY), ("old", 3 * DAY), ("new", 40 * DAY), ("new", 41 * DAY)]
    )
    # at day 42 with a 30-day window: "new" has 2 events, "old" none; unknown items none
    at_42 = times.trending(["old", "new", "unknown"], 42 * DAY, 30 * DAY)
    np.testing.assert_allclose(at_42, [0.0, 1.0, 0.0])
    # at day 4 (a request as of then): "old" had 3, "new" nothing yet (no look-ahead)
    at_4 = times.trending(["old", "new"], 4 * DAY, 30 * DAY)
    np.testing.assert_allclose(at_4, [1.0, 0.0])
    # log-scaled among the candidates: 2 events vs 3 -> log(1 + 2) / log(1 + 3)
    both = times.trending(["old", "new"], 41.5 * DAY, 41 * DAY)
    np.testing.assert_allclose(both, [1.0, np.log1p(2) / np.log1p(3)])
    assert not times.trending(["unknown"], 42 * DAY, DAY).any()
