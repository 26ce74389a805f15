"""Speed switches shared by the trainer, the sampler and the benchmarks (chosen with bench/train.py).

On the 2-core CPU box (torch 2.13, AVX512-BF16, no AMX), batch 16 x 512, `small` preset:
- bf16 autocast: ~1.6-1.8x eager fp32 tok/s. Weights and optimizer state stay fp32.
- torch.compile on top: another ~10-20%, after ~25-30 s of compilation, and it recompiles when the
  batch shape changes, so it only pays off in long runs with fixed shapes. Never compile for sampling
  (the growing KV cache recompiles every step).
"""
from __future__ import annotations

import contextlib

import torch


def autocast_context(device: str | torch.device, enabled: bool = True):
    """bf16 autocast on `device` when enabled, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """torch.compile(model) for training forward/backward when enabled; the module itself otherwise.

    The compiled wrapper shares parameters with `model`; keep the plain module for sampling and saving.
    """
    return torch.compile(model) if enabled else model
