import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def single_thread():
    """The tests use tiny tensors: extra threads cost more than they save (and were 30x slower on a
    busy 2-core box)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
