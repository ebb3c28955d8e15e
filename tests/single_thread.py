"""Tiny tensors gain nothing from intra-op threads, and on a busy machine two spinning threads
per op cost far more than they give: test folders that import this fixture in their conftest run
single-threaded."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
