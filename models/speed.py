"""Precision and torch.compile chosen from the machine (`auto`), and the switches that apply them.

Precision `auto` is bf16 autocast only where bf16 is native and measured faster on the model's own
shapes; fp32 elsewhere. A CPU without native bf16 (most laptops: AVX2 only) emulates it about 10x slower
than fp32, so its flags settle the question without a probe. Where bf16 is native, or the flags are
unknown, a short one-off probe times the workload itself (a training step, or a batch of sampled tokens)
in fp32 and in bf16, and the answer is remembered per machine and shape in a small JSON file
(~/.cache/gsm-testbed/speed.json, or $GSM_TESTBED_CACHE_DIR) and in a copy beside a study's stage cache:
a study resolves the same way every time it runs on the same machine, so its cache keys stay stable.

Compile `auto` is on for long training runs (>= COMPILE_MIN_STEPS optimizer steps) where the compiler
toolchain works: bench/train.py measured 1.2-1.34x eager fp32 on an AVX2 CPU and 1.3x eager bf16 on an
AVX512-BF16 CPU, after ~15-30 s of compilation, so short runs lose. Never for sampling: the growing KV
cache recompiles every step. Explicit values always win.
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from models import machine
from models.sampler import autocast_context, generate

PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")  # Lightning's names; 16-mixed is for GPUs
COMPILE_VALUES = ("auto", "true", "false")
BF16_MIN_SPEEDUP = 1.1  # bf16 changes the numerics: take it only when clearly faster
COMPILE_MIN_STEPS = 1000
PROBE_TOKENS = 4096  # a training probe's batch is capped at this many tokens (seconds, not minutes)


@dataclass(frozen=True)
class Choice:
    value: str | bool
    reason: str  # one phrase: why this value ("set", "auto: ...")

    def __str__(self) -> str:
        shown = ("on" if self.value else "off") if isinstance(self.value, bool) else self.value
        return f"{shown} ({self.reason})"


# ------------------------------------------------------------------------------------------- switches

def uses_bf16(precision: str) -> bool:
    return str(precision).startswith("bf16")


def autocast_for(precision: str, device: str | torch.device = "cpu"):
    """bf16 autocast for a bf16 precision, else a no-op context."""
    return autocast_context(device, uses_bf16(precision))


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """torch.compile(model) for training forward/backward when enabled; the module itself otherwise.

    The compiled wrapper shares parameters with `model`; keep the plain module for sampling and saving.
    """
    return torch.compile(model) if enabled else model


# ----------------------------------------------------------------------------------------- precision

def check_precision(value) -> str:
    value = str(value)
    if value not in PRECISIONS:
        from gsm_synth.suggest import did_you_mean

        raise ValueError(f"precision '{value}' is not one of {', '.join(PRECISIONS)}{did_you_mean(value, PRECISIONS)}")
    return value


def device_kind(accelerator: str) -> str:
    """'cuda', 'cpu' or another accelerator's name, for a Lightning accelerator setting."""
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return "cuda"
    return "cpu" if accelerator == "auto" else accelerator


def resolve_precision(requested, accelerator: str = "cpu", model=None, tokens: int = PROBE_TOKENS,
                      workload: str = "train", memory: Path | None = None) -> Choice:
    """The precision to run `workload` ('train' or 'sample') of `model` with on this machine. Only the
    model's config is read. `memory`: a second probe memory file (a study keeps one beside its cache)."""
    requested = check_precision(requested)
    if requested != "auto":
        return Choice(requested, "set")
    kind = device_kind(accelerator)
    if kind == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return Choice("bf16-mixed", "auto: the CUDA device supports bf16")
        return Choice("32-true", "auto: no bf16 on this device")
    if kind != "cpu":
        return Choice("32-true", f"auto: fp32 on {accelerator}")
    native = machine.native_bf16()
    if native is False:
        return Choice("32-true", "auto: no native bf16 on this CPU, bf16 would be emulated")
    if model is None:
        return Choice("32-true", "auto: no model to probe bf16 with")
    where = "native bf16" if native else "bf16 support unknown"
    try:
        ratio = probe_bf16(model, tokens, workload, memory)
    except Exception as e:  # a probe must never stop a run: fp32 always works
        return Choice("32-true", f"auto: {where}, the bf16 probe failed ({type(e).__name__})")
    if ratio >= BF16_MIN_SPEEDUP:
        return Choice("bf16-mixed", f"auto: {where}, measured {ratio:.2f}x fp32")
    return Choice("32-true", f"auto: {where} but measured {ratio:.2f}x fp32")


def probe_bf16(model, tokens: int, workload: str, memory: Path | None = None) -> float:
    """bf16 speed / fp32 speed for this workload and model shape, measured once per machine."""
    shape = {k: getattr(model.config, k) for k in ("n_layer", "n_embd", "n_head", "n_kv_head", "ffn_hidden",
                                                   "vocab_size")}
    key = _probe_key({"probe": "bf16", "workload": workload, "tokens": int(tokens), **shape})
    return remembered(key, lambda: _time_bf16(model, int(tokens), workload), memory)


def _time_bf16(model, tokens: int, workload: str, reps: int = 3) -> float:
    """Only model.config is read (the model may live on the meta device); the probe has its own weights."""
    from models.gpt import GPT

    with torch.random.fork_rng(devices=[]):  # the caller's random stream stays where it was
        torch.manual_seed(0)
        probe = GPT(model.config)
    gen = torch.Generator().manual_seed(0)
    if workload == "sample":
        rows = max(1, min(tokens, 256))
        prompts = [torch.randint(4, model.config.vocab_size, (48,), generator=gen).tolist()] * rows

        def run(bf16: bool):
            generate(probe.eval(), prompts, 1, 16, seed=0, autocast=bf16, max_batch=rows)
    else:
        seq = min(256, model.config.max_seq_len)
        x = torch.randint(4, model.config.vocab_size, (max(1, min(tokens, PROBE_TOKENS) // seq), seq + 1),
                          generator=gen)

        def run(bf16: bool):
            with autocast_context("cpu", bf16):
                _, loss = probe.train()(x[:, :-1], targets=x[:, 1:])
            loss.backward()
            probe.zero_grad(set_to_none=True)

    times = {False: [], True: []}
    for rep in range(reps + 1):
        for bf16 in (False, True):
            t0 = time.perf_counter()
            run(bf16)
            if rep:  # the first round warms up
                times[bf16].append(time.perf_counter() - t0)
    return statistics.median(times[False]) / statistics.median(times[True])


# ------------------------------------------------------------------------------------------- compile

def check_compile(value) -> str:
    text = str(value).lower()
    if text not in COMPILE_VALUES:
        raise ValueError(f"compile '{value}' is not one of {', '.join(COMPILE_VALUES)}")
    return text


def resolve_compile(requested, accelerator: str = "cpu", steps: int = 0, workload: str = "train",
                    memory: Path | None = None) -> Choice:
    """Whether to torch.compile the training forward of a run of `steps` optimizer steps."""
    requested = check_compile(requested)
    if requested != "auto":
        return Choice(requested == "true", "set")
    if workload != "train":
        return Choice(False, "auto: sampling shapes change every step")
    if steps < COMPILE_MIN_STEPS:
        return Choice(False, f"auto: {steps} steps do not repay ~30 s of compilation")
    kind = device_kind(accelerator)
    if kind not in ("cpu", "cuda"):
        return Choice(False, f"auto: not on {accelerator}")
    problem = compile_problem(kind, memory)
    if problem:
        return Choice(False, f"auto: torch.compile does not work here ({problem})")
    return Choice(True, f"auto: {steps} steps")


def compile_problem(device: str = "cpu", memory: Path | None = None) -> str | None:
    """None if torch.compile builds and runs a small function on `device` here, else why not (remembered)."""
    key = _probe_key({"probe": "compile", "device": device})
    verdict = remembered(key, lambda: _try_compile(device), memory)
    return None if verdict == "ok" else verdict


def _try_compile(device: str = "cpu") -> str:
    try:
        torch._dynamo.reset()
        fn = torch.compile(lambda x: torch.nn.functional.silu(x) * 2 + 1)
        x = torch.randn(64, device=device)
        if not torch.allclose(fn(x), torch.nn.functional.silu(x) * 2 + 1):
            return "a compiled function gave a wrong result"
        return "ok"
    except Exception as e:  # no C++ compiler, unsupported Python or platform: anything means "not here"
        text = str(e).strip().splitlines()
        return f"{type(e).__name__}: {text[0][:100]}" if text else type(e).__name__


def warn_compile_fallback(error: BaseException) -> None:
    text = str(error).strip().splitlines()
    print(f"warning: torch.compile failed ({type(error).__name__}: {text[0][:100] if text else ''}); "
          "training eagerly instead", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------- probe memory

def cache_path() -> Path:
    root = os.environ.get("GSM_TESTBED_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                           Path.home() / ".cache") / "gsm-testbed"
    return Path(root) / "speed.json"


def _probe_key(payload: dict) -> str:
    """The probe and the machine: CPU, ISA flags, cores, torch (not the thread setting, so that a decision
    and the cache keys built on it stay put when GSM_TESTBED_THREADS changes)."""
    info = machine.machine_info()
    fingerprint = {k: info[k] for k in ("cpu", "arch", "isa", "cores", "torch")}
    text = json.dumps({**payload, "machine": fingerprint}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_memory(path: Path) -> dict:
    try:
        memory = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return memory if isinstance(memory, dict) else {}


def remembered(key: str, measure, memory: Path | None = None):
    """The value stored under `key` in `memory` or the user's memory file, or measure() stored in both.

    A study passes a memory file beside its stage cache: its stages' keys are built on these decisions,
    so they stay put for that cache even if the user's file is deleted. Unreadable files count as empty."""
    paths = [p for p in (memory, cache_path()) if p is not None]
    memories = [_read_memory(p) for p in paths]
    entry = next((m[key] for m in memories if isinstance(m.get(key), dict) and "value" in m[key]), None)
    if entry is None:
        entry = {"value": measure(), "when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine.cpu_model()}
    for path, stored in zip(paths, memories):
        if stored.get(key) != entry:
            try:
                from gsm_synth.atomic import write_atomic

                write_atomic(path, json.dumps({**stored, key: entry}, indent=1))
            except OSError:  # a read-only place still runs; it probes again next time
                pass
    return entry["value"]
