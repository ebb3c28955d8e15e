"""Fixtures shared by the whole suite."""

import pytest
from accelerate.state import AcceleratorState, GradientState


@pytest.fixture
def fresh_accelerate():
    """Accelerate keeps one state per process: reset it around a test that builds its own ``Run``."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
