"""Batched sampling with a static KV cache. Knows token ids only; tokenisation happens elsewhere.

Prompts of different lengths share a batch by left padding: padded keys are masked out and every row
gets its own RoPE positions, so a row decodes exactly as it would alone. Each prompt is prefilled once
and its keys/values are shared by its n samples, never copied. Rows that emit EOS stop being recorded,
and are dropped from the batch once enough of them have finished (dropping copies the rows' decoded
keys/values, so it is batched up).
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


class KVCache:
    """Keys and values of a batch of prompts and of the samples decoded from them.

    A prompt's keys/values are stored once, (n_layer, prompts, n_kv_head, width, head_dim), however many
    samples it has; each sample row stores only the tokens it decoded. Decode attention reads a prompt's
    keys once for all its samples (their queries side by side in one matmul), which cuts the bytes read
    per step by up to the number of samples: decode attention is most of a step (a bandwidth cost).
    Protocol the model uses: decoding, positions(T), attn_mask(T), update(layer, k, v) while prefilling,
    attend(layer, q, k, v) while decoding (one token per row), advance(T).
    pad_len[p] = number of left-pad tokens of prompt p.
    """

    def __init__(self, cfg, pad_len: torch.Tensor, width: int, max_new: int, dtype, device):
        shape = (cfg.n_layer, len(pad_len), cfg.n_kv_head, width, cfg.head_dim)
        self.prompt_k = torch.zeros(shape, dtype=dtype, device=device)
        self.prompt_v = torch.zeros(shape, dtype=dtype, device=device)
        self.pad_len, self.width, self.max_new = pad_len.to(device), width, max_new
        self.padded = bool(self.pad_len.any())
        self.pos = 0  # prompt tokens written
        self.t = None  # decoded tokens written (None until fan_out)
        self.n_head, self.scale = cfg.n_head, cfg.head_dim ** -0.5

    def fan_out(self, n: int) -> None:
        """Start decoding n samples of every prompt: rows p * n + j, all alive."""
        L, P, KV, _, D = self.prompt_k.shape
        self.n, self.t = n, 0
        shape = (L, P * n, KV, self.max_new, D)
        self.new_k = self.prompt_k.new_zeros(shape)
        self.new_v = self.prompt_v.new_zeros(shape)
        self.slot = torch.arange(P * n, device=self.pad_len.device)  # place of each live row in the prompt x sample grid
        self.owner = self.slot // n  # its prompt
        self._pad_mask()

    def _pad_mask(self) -> None:
        keys = torch.arange(self.width, device=self.pad_len.device)
        self.pad_mask = (keys[None, :] < self.pad_len[:, None])[:, None, None, :] if self.padded else None

    @property
    def decoding(self) -> bool:
        """After fan_out: each forward pass adds one token per live row (attend), not prompt tokens (update)."""
        return self.t is not None

    def positions(self, T: int) -> torch.Tensor:
        """RoPE positions of the next T tokens: (T,) shared, or (B, T) when rows are left-padded."""
        dev = self.pad_len.device
        if self.decoding:  # each row continues its own prompt
            return (self.width - self.pad_len[self.owner] + self.t)[:, None]
        steps = torch.arange(self.pos, self.pos + T, device=dev)
        if not self.padded:
            return steps
        return (steps[None, :] - self.pad_len[:, None]).clamp(min=0)

    def attn_mask(self, T: int) -> torch.Tensor | None:
        """Prefill: a boolean (B, 1, T, pos+T) mask, or None when plain causal attention is already right."""
        if self.decoding or (not self.padded and self.pos == 0):
            return None  # decode masks inside attend; a fresh unpadded prefill is plain causal
        dev = self.pad_len.device
        q = torch.arange(self.pos, self.pos + T, device=dev)[:, None]
        kpos = torch.arange(self.pos + T, device=dev)[None, :]
        mask = (kpos <= q)[None] & (kpos[None] >= self.pad_len[:, None, None])
        # A pad query would see no key at all (softmax of nothing = NaN, and 0 * NaN leaks through
        # the value product), so every query may always see itself.
        mask = mask | (kpos == q)[None]
        return mask.unsqueeze(1)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Prefill: store the prompts' keys/values; returns all of them so far."""
        if self.decoding:
            raise ValueError("a decoding cache takes one token per row at a time (attend), not prompt tokens")
        end = self.pos + k.shape[2]
        self.prompt_k[layer, :, :, self.pos:end] = k
        self.prompt_v[layer, :, :, self.pos:end] = v
        return self.prompt_k[layer, :, :, :end], self.prompt_v[layer, :, :, :end]

    @property
    def _dense(self) -> bool:
        """One live row per prompt, in prompt order: rows are already the grid (compaction keeps this for n = 1)."""
        return self.n == 1 and len(self.slot) == self.prompt_k.shape[1]

    def _to_grid(self, x: torch.Tensor) -> torch.Tensor:
        """(rows, KV, g, X) -> (prompts, KV, n * g, X): each prompt's live samples side by side (dead ones 0)."""
        B, KV, g, X = x.shape
        P = self.prompt_k.shape[1]
        if self._dense:
            return x
        grid = x.new_zeros(P * self.n, KV, g, X)
        grid[self.slot] = x
        return grid.view(P, self.n, KV, g, X).transpose(1, 2).reshape(P, KV, self.n * g, X)

    def _from_grid(self, x: torch.Tensor, g: int) -> torch.Tensor:
        P, KV, _, X = x.shape
        if self._dense:
            return x
        return x.view(P, KV, self.n, g, X).transpose(1, 2).reshape(P * self.n, KV, g, X)[self.slot]

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Decode: store the rows' new keys/values and attend from their one query each; (B, H, 1, D).

        Two matmuls per part (the prompt's keys, the row's decoded ones), softmax over both. It runs in the
        cache's dtype with autocast off: bf16 batched matmuls whose key length changes every step made
        oneDNN keep ~5 MB per new shape (2 GB over a 200-token run), and were slower.
        """
        B, KV, t = q.shape[0], self.prompt_k.shape[2], self.t
        g, D = self.n_head // KV, q.shape[-1]
        with torch.autocast(q.device.type, enabled=False):
            self.new_k[layer, :, :, t] = k[:, :, 0]
            self.new_v[layer, :, :, t] = v[:, :, 0]
            q = q.to(self.prompt_k.dtype).reshape(B, KV, g, D)  # query heads of a KV group fold into rows
            s_prompt = self._to_grid(q) @ self.prompt_k[layer].transpose(-1, -2)  # (P, KV, n * g, width)
            if self.pad_mask is not None:
                s_prompt = s_prompt.masked_fill(self.pad_mask, float("-inf"))
            s_new = q @ self.new_k[layer, :, :, :t + 1].transpose(-1, -2)  # (B, KV, g, t + 1)
            scores = torch.cat([self._from_grid(s_prompt, g), s_new], dim=-1) * self.scale
            p = torch.softmax(scores.float(), dim=-1).to(self.prompt_v.dtype)
            y = self._from_grid(self._to_grid(p[..., :self.width].contiguous()) @ self.prompt_v[layer], g)
            y = y + p[..., self.width:] @ self.new_v[layer, :, :, :t + 1]
        return y.reshape(B, self.n_head, 1, D)

    def advance(self, T: int) -> None:
        if self.decoding:
            if self.t + T > self.max_new:
                raise ValueError(f"KV cache overflow: {self.t + T} new tokens > {self.max_new}")
            self.t += T
            return
        if self.pos + T > self.width:
            raise ValueError(f"KV cache overflow: {self.pos + T} prompt tokens > {self.width}")
        self.pos += T

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep the given live rows, in that order; prompts with no row left are dropped as well."""
        self.new_k = self.new_k.index_select(1, rows)
        self.new_v = self.new_v.index_select(1, rows)
        owner, sample = self.owner[rows], self.slot[rows] % self.n
        prompts = torch.unique(owner)  # sorted
        if len(prompts) < self.prompt_k.shape[1]:
            self.prompt_k = self.prompt_k.index_select(1, prompts)
            self.prompt_v = self.prompt_v.index_select(1, prompts)
            self.pad_len = self.pad_len.index_select(0, prompts)
            self._pad_mask()
            owner = torch.searchsorted(prompts, owner)
        self.owner, self.slot = owner, owner * self.n + sample


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
    # The cache stays in the weights' dtype even under autocast (see KVCache.attend).
    cache = KVCache(model.config, width - lens, width, max_new_tokens, param.dtype, device)

    with autocast_context(device, autocast):
        logits = model(idx.to(device), kv_cache=cache, last_only=True)[:, -1]
    cache.fan_out(n_samples)  # each prompt's samples share its prefilled keys and values
    if n_samples > 1:
        logits = logits.repeat_interleave(n_samples, dim=0)

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
