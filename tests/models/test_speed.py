"""Precision and compile from the machine: mocked capabilities, the probe memory, explicit overrides,
and a compiler that fails."""
import json

import pytest
import torch

from models import GPT, machine, model_config, speed
from pipelines.common.mixture import MixtureConfig
from pipelines.train.config import LMStageConfig
from pipelines.train.lm import run_lm_stage


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch, tmp_path):
    """Each test starts with no remembered probe."""
    monkeypatch.setenv("GSM_TESTBED_CACHE_DIR", str(tmp_path / "memory"))


@pytest.fixture
def model():
    return GPT(model_config("tiny", 50, 64))


@pytest.fixture
def cpu(monkeypatch):
    """Set what the CPU's flags say, and what the probe would measure (None: it must not run)."""
    def configure(native, ratio=None):
        monkeypatch.setattr(machine, "native_bf16", lambda: native)

        def probe(model, tokens, workload):
            if ratio is None:
                raise AssertionError("the probe ran although the flags settle the question")
            return ratio
        monkeypatch.setattr(speed, "_time_bf16", probe)
    return configure


def test_no_native_bf16_means_fp32_without_a_probe(cpu, model):
    cpu(native=False)
    choice = speed.resolve_precision("auto", "cpu", model)
    assert choice.value == "32-true" and "no native bf16" in choice.reason


def test_native_bf16_is_used_only_when_measured_faster(cpu, model):
    cpu(native=True, ratio=1.8)
    assert speed.resolve_precision("auto", "cpu", model, tokens=512).value == "bf16-mixed"
    cpu(native=True, ratio=0.8)  # another shape: probed afresh
    choice = speed.resolve_precision("auto", "cpu", model, tokens=1024)
    assert choice.value == "32-true" and "0.80x" in choice.reason


def test_unknown_flags_are_settled_by_the_probe(cpu, model):
    cpu(native=None, ratio=1.5)
    choice = speed.resolve_precision("auto", "cpu", model, tokens=2048, workload="sample")
    assert choice.value == "bf16-mixed" and "unknown" in choice.reason


def test_cuda_uses_bf16_where_the_device_supports_it(monkeypatch, model):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert speed.resolve_precision("auto", "gpu", model).value == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert speed.resolve_precision("auto", "gpu", model).value == "32-true"


def test_an_explicit_precision_always_wins(cpu, model):
    cpu(native=False)
    assert speed.resolve_precision("bf16-mixed", "cpu", model) == speed.Choice("bf16-mixed", "set")
    cpu(native=True)
    assert speed.resolve_precision("32-true", "cpu", model).value == "32-true"
    with pytest.raises(ValueError, match="precision 'bf16' is not one of .*did you mean 'bf16-mixed'"):
        speed.resolve_precision("bf16", "cpu", model)


def test_the_probe_runs_once_per_machine_and_shape(monkeypatch, model):
    calls = []
    monkeypatch.setattr(machine, "native_bf16", lambda: True)
    monkeypatch.setattr(speed, "_time_bf16", lambda m, t, w: calls.append(t) or 2.0)
    for _ in range(3):
        assert speed.resolve_precision("auto", "cpu", model, tokens=777).value == "bf16-mixed"
    assert calls == [777]
    memory = json.loads(speed.cache_path().read_text())
    assert 2.0 in [entry["value"] for entry in memory.values()]


def test_a_corrupted_probe_memory_is_measured_again(monkeypatch, model):
    speed.cache_path().parent.mkdir(parents=True, exist_ok=True)
    speed.cache_path().write_text("{not json")
    monkeypatch.setattr(machine, "native_bf16", lambda: True)
    monkeypatch.setattr(speed, "_time_bf16", lambda m, t, w: 0.5)
    assert speed.resolve_precision("auto", "cpu", model, tokens=999).value == "32-true"
    assert json.loads(speed.cache_path().read_text())  # rewritten whole


def test_the_real_probe_needs_only_the_shape_and_leaves_the_random_stream_alone(real_probes):
    with torch.device("meta"):
        shape = GPT(model_config("tiny", 50, 64))  # no weights at all: the probe builds its own
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for workload in ("train", "sample"):
        ratio = real_probes["time_bf16"](shape, 256, workload)
        assert 0 < ratio < float("inf")
    assert torch.equal(torch.rand(3), expected)


def test_a_failing_probe_means_fp32_not_a_crash(monkeypatch, model):
    monkeypatch.setattr(machine, "native_bf16", lambda: None)

    def broken(*args):
        raise RuntimeError("no bf16 kernels")
    monkeypatch.setattr(speed, "_time_bf16", broken)
    choice = speed.resolve_precision("auto", "cpu", model)
    assert choice.value == "32-true" and "probe failed (RuntimeError)" in choice.reason


def test_a_study_keeps_its_decisions_beside_its_cache(monkeypatch, model, tmp_path):
    """Deleting the user's memory must not flip a decision that a cache's keys were built on."""
    monkeypatch.setattr(machine, "native_bf16", lambda: True)
    monkeypatch.setattr(speed, "_time_bf16", lambda m, t, w: 1.5)
    study_memory = tmp_path / "cache" / "speed.json"
    assert speed.resolve_precision("auto", "cpu", model, memory=study_memory).value == "bf16-mixed"
    speed.cache_path().unlink()
    monkeypatch.setattr(speed, "_time_bf16", lambda m, t, w: 0.5)  # a probe now would say fp32
    assert speed.resolve_precision("auto", "cpu", model, memory=study_memory).value == "bf16-mixed"
    assert speed.cache_path().is_file()  # and the user's memory learns it back
    assert speed.resolve_precision("auto", "cpu", model, tokens=99, memory=study_memory).value == "32-true"


def test_compile_auto_is_off_for_short_runs_and_sampling():
    assert speed.resolve_compile("auto", steps=10).value is False
    assert speed.resolve_compile("auto", steps=5000, workload="sample").value is False
    assert speed.resolve_compile("auto", steps=5000) == speed.Choice(True, "auto: 5000 steps")
    assert speed.resolve_compile("false", steps=5000).value is False
    assert speed.resolve_compile("True", steps=1).value is True  # explicit: YAML's true arrives as 'True'
    with pytest.raises(ValueError, match="compile 'maybe' is not one of auto, true, false"):
        speed.resolve_compile("maybe")


def test_compile_auto_falls_back_where_the_compiler_fails(real_probes, monkeypatch, tmp_path):
    """A real toolchain failure: inductor's C++ compiler is /bin/false, with an empty kernel cache."""
    inductor = pytest.importorskip("torch._inductor.config")
    monkeypatch.setattr(inductor.cpp, "cxx", ("/bin/false",))
    monkeypatch.setattr(inductor, "fx_graph_cache", False)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    monkeypatch.setattr(speed, "_try_compile", real_probes["try_compile"])
    monkeypatch.setattr(speed, "COMPILE_MIN_STEPS", 1)
    choice = speed.resolve_compile("auto", steps=5)
    assert choice.value is False and "does not work here" in choice.reason, choice
    assert speed.resolve_compile("true", steps=5).value is True  # explicit wins (training then falls back)


@pytest.mark.slow
def test_training_falls_back_to_eager_with_one_warning(monkeypatch, tmp_path, capsys):
    def broken_compile(module, *args, **kwargs):
        def call(*a, **k):
            raise RuntimeError("no C++ compiler found")
        return call
    monkeypatch.setattr(torch, "compile", broken_compile)
    cfg = LMStageConfig(preset="tiny", budget_tokens=3 * 2 * 64, batch_size=2, seq_len=64, max_seq_len=128,
                        precision="32-true", compile="true", checkpoint_every=10, mixture=MixtureConfig(ops={"2": 1.0}))
    final = run_lm_stage(cfg, tmp_path, progress=False)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "torch.compile failed" in line]
    assert len(warnings) == 1 and "training eagerly" in warnings[0]
    summary = json.loads((final / "model.json").read_text())["summary"]
    assert summary["compile"] is False and summary["steps"] == 3


def test_machine_record_names_the_isa_flags():
    info = machine.machine_info()
    assert info["cores"] >= 1 and info["torch"] == torch.__version__
    line = machine.describe_machine(info)
    assert info["cpu"] in line and "torch" in line
    if info["isa"] is not None:
        assert all(flag in line for flag in info["isa"])


class FakeLoad:
    """A clock and CPU counters the test advances by hand: `foreign` cores busy besides our own work."""

    def __init__(self, monkeypatch):
        self.now = self.busy = self.own = 0.0
        monkeypatch.setattr(machine, "busy_cpu_seconds", lambda: self.busy + 1.0)
        monkeypatch.setattr(machine, "own_cpu_seconds", lambda: self.own)
        monkeypatch.setattr(machine, "cores", lambda: 2)
        monkeypatch.delenv("GSM_TESTBED_THREADS", raising=False)

    def advance(self, seconds: float, foreign: float, ours: float = 2.0):
        self.now += seconds
        self.own += ours * seconds
        self.busy += (ours + foreign) * seconds


def test_the_governor_leaves_busy_cores_to_other_programs_and_takes_them_back(monkeypatch):
    load = FakeLoad(monkeypatch)
    before = torch.get_num_threads()
    with machine.ThreadGovernor(clock=lambda: load.now) as governor:
        assert torch.get_num_threads() == 2
        load.advance(0.5, foreign=1.0)
        governor.step()  # within the interval: nothing changes yet
        assert torch.get_num_threads() == 2
        load.advance(0.6, foreign=1.0)
        governor.step()
        assert torch.get_num_threads() == 1
        load.advance(1.1, foreign=0.1, ours=1.0)
        governor.step()
        assert torch.get_num_threads() == 2
        load.advance(1.1, foreign=3.0)  # more than every core busy: still one thread, never zero
        governor.step()
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before  # restored


def test_a_fixed_thread_count_switches_the_governor_off(monkeypatch):
    load = FakeLoad(monkeypatch)
    monkeypatch.setenv("GSM_TESTBED_THREADS", "1")
    before = torch.get_num_threads()
    with machine.ThreadGovernor(clock=lambda: load.now) as governor:
        load.advance(2.0, foreign=0.0)
        governor.step()
        assert torch.get_num_threads() == 1 and not governor.enabled
    assert torch.get_num_threads() == before
