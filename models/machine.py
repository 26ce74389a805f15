"""What machine this is: CPU model, the ISA flags that decide speed, cores, torch, device.

Every stage record and report carries `machine_info()`, so a reader can tell which machine produced a
number. `native_bf16()` answers from the CPU's own flags: True (AVX512-BF16 or AMX on x86, the bf16
extension on ARM), False (flags known, none of them: bf16 would be emulated, ~10x slower than fp32),
or None (flags unknown: the precision probe in models.speed decides).
"""
from __future__ import annotations

import functools
import os
import platform
import resource
import subprocess
import time

# Flags that matter for speed, in the order reports print them.
X86_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
ARM_FLAGS = ("asimd", "sve", "bf16", "i8mm")
NATIVE_BF16 = {"avx512_bf16", "amx_bf16", "bf16"}


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str] | None]:
    """(CPU model name, its flags) from /proc/cpuinfo on Linux, sysctl on macOS; flags None if unknown."""
    model, flags = platform.processor() or platform.machine(), None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "model name" and value.strip():
                    model = value.strip()
                elif key in ("flags", "features") and flags is None:  # x86: flags; ARM: Features
                    flags = frozenset(value.split())
        return model, flags
    except OSError:
        pass
    if platform.system() == "Darwin":
        model = _sysctl("machdep.cpu.brand_string") or model
        if _sysctl("hw.optional.arm.FEAT_BF16") is not None:
            flags = frozenset({"bf16"} if _sysctl("hw.optional.arm.FEAT_BF16") == "1" else set())
    return model, flags


def _sysctl(name: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def cpu_model() -> str:
    return _cpuinfo()[0]


def isa_flags() -> dict[str, bool] | None:
    """The speed-relevant flags of this CPU, present or not; None where the OS does not tell."""
    flags = _cpuinfo()[1]
    if flags is None:
        return None
    names = ARM_FLAGS if platform.machine().lower() in ("arm64", "aarch64") else X86_FLAGS
    return {name: name in flags for name in names}


def native_bf16() -> bool | None:
    flags = isa_flags()
    if flags is None:
        return None
    return any(flags.get(name, False) for name in NATIVE_BF16)


def cores() -> int:
    """CPUs this process may run on (a container's or taskset's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def configure_threads(threads: int | None = None) -> int:
    """Intra-op threads for training and sampling: one per available core, or `threads` when given
    (the GSM_TESTBED_THREADS environment variable sets it for every stage)."""
    import torch

    wanted = threads or fixed_threads() or cores()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def fixed_threads() -> int:
    """GSM_TESTBED_THREADS, or 0 when unset (then the thread count follows the machine's load)."""
    return int(os.environ.get("GSM_TESTBED_THREADS", "0") or 0)


def _allowed_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:
        return None


def busy_cpu_seconds() -> float:
    """CPU seconds the CPUs this process may use have been busy so far (Linux /proc/stat; 0 elsewhere).
    Only those CPUs count: in a container or under taskset, other tenants' cores are not our business."""
    allowed = _allowed_cpus()
    total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *values = line.split()
                if not name.startswith("cpu") or name == "cpu":
                    continue
                if allowed is not None and int(name[3:]) not in allowed:
                    continue
                # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
                v = [int(x) for x in values[:8]]
                total += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    except (OSError, ValueError):
        return 0.0
    return total / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class LoadMeter:
    """How many cores other programs kept busy since the last mark (this process's own time excluded)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.mark()

    def mark(self) -> None:
        self.t0, self.busy0, self.own0 = self.clock(), busy_cpu_seconds(), own_cpu_seconds()

    def elapsed(self) -> float:
        return self.clock() - self.t0

    def foreign_cores(self) -> float:
        own = own_cpu_seconds() - self.own0
        return max(0.0, busy_cpu_seconds() - self.busy0 - own) / max(self.elapsed(), 1e-9)


class ThreadGovernor:
    """Shares a busy machine fairly: every core while the machine is quiet, and the cores other programs
    leave free while they run. Use it as a context (`with ThreadGovernor() as g:`, or start() / stop())
    and call step() between units of work (training steps, sampler calls); stop() restores the thread
    count it found.

    Why: OpenMP threads wait for each other at every parallel region, so one thread that shares its core
    with a busy program stalls all of them: on 2 cores beside one busy process, 2 threads trained 3-4x
    slower than alone, 1 thread not at all slower (bench/shared_machine.py, docs/experiments.md). The
    thread count does not change the results (checked bit for bit, fp32 and bf16). Off under DDP (the
    other ranks would count as foreign load) and where GSM_TESTBED_THREADS fixes the count."""

    def __init__(self, interval: float = 1.0, enabled: bool = True, clock=time.monotonic):
        self.cores, self.interval = cores(), interval
        self.enabled = enabled and not fixed_threads() and self.cores > 1 and busy_cpu_seconds() > 0
        self.meter = LoadMeter(clock)
        self._previous = None

    def start(self) -> "ThreadGovernor":
        """Begin with every core (or GSM_TESTBED_THREADS) and a fresh load window."""
        import torch

        self._previous = torch.get_num_threads()
        configure_threads()
        self.meter.mark()
        return self

    def stop(self) -> None:
        import torch

        if self._previous is not None and torch.get_num_threads() != self._previous:
            torch.set_num_threads(self._previous)
        self._previous = None

    def __enter__(self) -> "ThreadGovernor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def step(self) -> None:
        if not self.enabled or self.meter.elapsed() < self.interval:
            return
        import torch

        threads = max(1, min(self.cores, round(self.cores - self.meter.foreign_cores())))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        self.meter.mark()


def machine_info(device: str = "cpu") -> dict:
    """A JSON-ready record of this machine, for stage.json and reports. `threads` is the configured
    count (the governor may use fewer while other programs are busy)."""
    import torch

    info = {"cpu": cpu_model(), "arch": platform.machine(), "isa": isa_flags(), "native_bf16": native_bf16(),
            "cores": cores(), "threads": fixed_threads() or cores(), "torch": torch.__version__,
            "os": platform.system(), "device": "cpu"}
    if device in ("gpu", "cuda") and torch.cuda.is_available():
        info["device"] = f"cuda: {torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}"
    return info


def same_machine(a: dict, b: dict) -> bool:
    """The same CPU and torch (thread settings and the device a stage ran on aside)."""
    return all(a.get(k) == b.get(k) for k in ("cpu", "arch", "isa", "cores", "torch"))


def describe_machine(info: dict | None = None) -> str:
    """One line: 'AMD EPYC, x86_64, 2 cores (2 threads); avx2 fma avx512f avx512_bf16, no amx_bf16 ...'."""
    info = info or machine_info()
    isa = info.get("isa")
    if isa is None:
        flags = "ISA flags unknown"
    else:
        flags = " ".join(k for k, v in isa.items() if v) or "none of " + " ".join(isa)
        missing = [k for k, v in isa.items() if not v]
        flags += f"; no {' '.join(missing)}" if missing else ""
    threads = f"{info['threads']} thread{'s' if info['threads'] != 1 else ''}"
    return (f"{info['cpu']}, {info['arch']}, {info['cores']} cores ({threads}); {flags}; "
            f"torch {info['torch']}; device {info['device']}")
