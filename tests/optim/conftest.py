"""Single-threaded tests (see tests/single_thread.py)."""

from tests.single_thread import one_thread  # noqa: F401 (autouse fixture)
