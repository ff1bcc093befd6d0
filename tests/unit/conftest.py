from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Torch on one thread for a module of tiny models: thread synchronisation stalls them on a
    busy 2-core machine (use with `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    import torch  # only the modules that train something pay for the import

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
