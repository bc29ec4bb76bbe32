import numpy as np
import pytest

import maasfin as mf
from maasfin import _core


@pytest.fixture(autouse=True)
def _isolate_core_settings():
    """Every test starts with size-based dispatch and a fixed seed, and leaves them so."""
    mf.utils.set_random_seed(1234)
    _core.set_backend(_core.Backend.automatic)
    yield
    _core.set_backend(_core.Backend.automatic)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
