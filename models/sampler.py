"""Batched sampling with a static KV cache. Knows token ids only; tokenisation happens elsewhere.

Prompts of different lengths share a batch by left padding: padded keys are masked out and every row
gets its own RoPE positions, so a row decodes exactly as it would alone. Each prompt is prefilled once
and its cache copied to its n samples. Rows that emit EOS stop being recorded, and are dropped from the
batch once enough of them have finished (dropping costs a copy of the cache, so it is batched up).
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


class KVCache:
    """Preallocated keys/values (n_layer, B, n_kv_head, max_len, head_dim) plus a write position.

    The protocol the model uses: positions(T), attn_mask(T), update(layer, k, v), advance(T).
    pad_len[b] = number of left-pad tokens in row b (all rows share the same write position).
    """

    def __init__(self, cfg, batch: int, max_len: int, pad_len: torch.Tensor, dtype, device):
        shape = (cfg.n_layer, batch, cfg.n_kv_head, max_len, cfg.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_len, self.pos = max_len, 0
        self.pad_len = pad_len.to(device)
        self.padded = bool(self.pad_len.any())

    def positions(self, T: int) -> torch.Tensor:
        """RoPE positions of the next T tokens: (T,) shared, or (B, T) when rows are left-padded."""
        steps = torch.arange(self.pos, self.pos + T, device=self.pad_len.device)
        if not self.padded:
            return steps
        return (steps[None, :] - self.pad_len[:, None]).clamp(min=0)

    def attn_mask(self, T: int) -> torch.Tensor | None:
        """Boolean (B, 1, T, pos+T) mask, or None when plain causal attention is already right."""
        if not self.padded and (T == 1 or self.pos == 0):
            return None  # decode attends to everything cached; a fresh prefill is plain causal
        dev = self.pad_len.device
        q = torch.arange(self.pos, self.pos + T, device=dev)[:, None]
        kpos = torch.arange(self.pos + T, device=dev)[None, :]
        mask = (kpos <= q)[None] & (kpos[None] >= self.pad_len[:, None, None])
        # A pad query would see no key at all (softmax of nothing = NaN, and 0 * NaN leaks through
        # the value product), so every query may always see itself.
        mask = mask | (kpos == q)[None]
        return mask.unsqueeze(1)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        end = self.pos + k.shape[2]
        self.k[layer, :, :, self.pos:end] = k
        self.v[layer, :, :, self.pos:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, T: int) -> None:
        if self.pos + T > self.max_len:
            raise ValueError(f"KV cache overflow: {self.pos + T} > {self.max_len}")
        self.pos += T

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep (or repeat) the given batch rows, in that order."""
        self.k = self.k.index_select(1, rows)
        self.v = self.v.index_select(1, rows)
        self.pad_len = self.pad_len.index_select(0, rows)


def sample_next(logits: torch.Tensor, temperature: float, top_p: float, generator) -> torch.Tensor:
    """(B, V) logits -> (B,) token ids. temperature 0 is greedy; top_p < 1 is nucleus sampling."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # Drop a token when the tokens ranked above it already cover top_p (the top one always stays).
        sorted_p = sorted_p.masked_fill(sorted_p.cumsum(-1) - sorted_p > top_p, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    # Inverse-CDF sampling: one uniform per row. torch.multinomial draws one exponential per
    # vocabulary entry, which cost ~5 ms per step at batch 128 (a quarter of a decode step).
    cdf = probs.cumsum(dim=-1)
    u = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device) * cdf[:, -1:]
    # side="right": the first index whose cdf exceeds u, so zero-probability tokens are never picked.
    return torch.searchsorted(cdf, u, side="right").squeeze(-1).clamp_(max=cdf.shape[-1] - 1)


def autocast_context(device: str | torch.device, enabled: bool = True):
    """bf16 autocast on `device` when enabled; otherwise a no-op, so the caller's own autocast (an RL
    stage's, under Lightning's bf16-mixed) still applies."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def _generate_chunk(model, prompts, n_samples, max_new_tokens, temperature, top_p, eos_id, pad_id,
                    generator, want_logprobs, autocast):
    param = next(model.parameters())
    device = param.device
    lens = torch.tensor([len(p) for p in prompts])
    width = int(lens.max())
    idx = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    for row, p in enumerate(prompts):
        idx[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
    # The cache stays in the weights' dtype even under autocast (see GPT's decode attention).
    cache = KVCache(model.config, len(prompts), width + max_new_tokens, width - lens, param.dtype, device)

    with autocast_context(device, autocast):
        logits = model(idx.to(device), kv_cache=cache, last_only=True)[:, -1]
    if n_samples > 1:  # fan the prefilled prompt out to its samples
        fan = torch.arange(len(prompts), device=device).repeat_interleave(n_samples)
        cache.select_rows(fan)
        logits = logits.index_select(0, fan)

    B = len(prompts) * n_samples
    out = torch.full((B, max_new_tokens), pad_id, dtype=torch.long)
    out_logprobs = torch.zeros((B, max_new_tokens)) if want_logprobs else None
    lengths = torch.full((B,), max_new_tokens, dtype=torch.long)
    rows = torch.arange(B)  # output row of each live batch row
    alive = torch.ones(B, dtype=torch.bool)
    for step in range(max_new_tokens):
        tok = sample_next(logits, temperature, top_p, generator).cpu()
        tok = tok.masked_fill(~alive, pad_id)  # finished rows just idle until the next compaction
        out[rows[alive], step] = tok[alive]
        if want_logprobs:
            logp = F.log_softmax(logits.float(), dim=-1).gather(1, tok.to(device)[:, None])[:, 0]
            out_logprobs[rows[alive], step] = logp.cpu()[alive]
        if eos_id is not None:
            finished = alive & (tok == eos_id)
            lengths[rows[finished]] = step + 1
            alive &= ~finished
            if not alive.any():
                break
            if (~alive).sum() * 8 >= len(alive):  # compact once >= 1/8 of the batch is dead weight
                keep = alive.nonzero().squeeze(1)
                cache.select_rows(keep.to(device))
                rows, tok, alive = rows[keep], tok[keep], alive[keep]
        if step + 1 == max_new_tokens:
            break
        with autocast_context(device, autocast):
            logits = model(tok.to(device)[:, None], kv_cache=cache, last_only=True)[:, -1]

    tokens = [row[:n] for row, n in zip(out.tolist(), lengths.tolist())]
    logprobs = None
    if want_logprobs:
        logprobs = [row[:n] for row, n in zip(out_logprobs.tolist(), lengths.tolist())]
    return tokens, logprobs


@torch.inference_mode()
def generate(model, prompts: list[list[int]], n_samples: int, max_new_tokens: int,
             temperature: float = 1.0, top_p: float = 1.0, eos_id: int | None = None,
             pad_id: int = 0, seed: int = 0, max_batch: int = 256, return_logprobs: bool = False,
             autocast: bool = False):
    """Sample n_samples completions per prompt; returns only the new tokens.

    Result: result[i][j] = list of ids of sample j of prompt i, cut after the first EOS (EOS kept).
    With return_logprobs=True returns (tokens, logprobs), logprobs with the same nesting: the
    log-probability of each sampled token under the model's own distribution (temperature 1, no
    top-p), i.e. what a trainer recomputes for the policy ratio.
    max_batch bounds prompts x samples per forward pass (a prompt's samples are never split).
    The same seed, inputs and max_batch give the same samples.
    """
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (e.g. BOS)")
    if n_samples < 1 or max_new_tokens < 1:
        raise ValueError("n_samples and max_new_tokens must be >= 1")
    longest = max(len(p) for p in prompts)
    if longest + max_new_tokens > model.config.max_seq_len:
        raise ValueError(f"prompt {longest} + {max_new_tokens} new tokens > max_seq_len "
                         f"{model.config.max_seq_len}")
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    # Similar lengths side by side keeps left padding (wasted compute) small.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    per_chunk = max(1, max_batch // n_samples)
    tokens, logprobs = [None] * len(prompts), [None] * len(prompts)
    for start in range(0, len(order), per_chunk):
        chunk = order[start:start + per_chunk]
        toks, lps = _generate_chunk(model, [prompts[i] for i in chunk], n_samples, max_new_tokens,
                                    temperature, top_p, eos_id, pad_id, generator, return_logprobs,
                                    autocast)
        for j, i in enumerate(chunk):
            tokens[i] = toks[j * n_samples:(j + 1) * n_samples]
            if return_logprobs:
                logprobs[i] = lps[j * n_samples:(j + 1) * n_samples]
    return (tokens, logprobs) if return_logprobs else tokens
