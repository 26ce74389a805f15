import pytest
import torch
from hypothesis import settings

from models import speed

# Property tests: a quick default; `pytest --hypothesis-profile=long` for a long hunt (each test draws
# this many examples). No example database: a run never depends on what an earlier run found.
settings.register_profile("default", max_examples=100, deadline=None, database=None)
settings.register_profile("long", max_examples=50_000, deadline=None, database=None)
settings.load_profile("default")

REAL_PROBES = {"time_bf16": speed._time_bf16, "try_compile": speed._try_compile}


@pytest.fixture(autouse=True, scope="session")
def single_thread():
    """The tests use tiny tensors: extra threads cost more than they save (and were 30x slower on a
    busy 2-core box). GSM_TESTBED_THREADS keeps the stages' own thread setting at 1 too."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("GSM_TESTBED_THREADS", "1")
    yield
    mp.undo()
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="session")
def machine_independent_speed(tmp_path_factory):
    """`auto` precision and compile resolve the same way on every machine in the tests (fp32; compile
    where asked), and the probe memory lives in a temporary folder: tests never time the machine.
    tests/models/test_speed.py checks the real resolution with mocked capabilities."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GSM_TESTBED_CACHE_DIR", str(tmp_path_factory.mktemp("speed-cache")))
    mp.setattr(speed, "_time_bf16", lambda model, tokens, workload: 1.0)
    mp.setattr(speed, "_try_compile", lambda device="cpu": "ok")
    yield
    mp.undo()


@pytest.fixture
def real_probes():
    """The probes themselves, for the tests that check them."""
    return REAL_PROBES
