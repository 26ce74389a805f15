"""A small Qwen2-like decoder: pre-norm RMSNorm, RoPE, SwiGLU, optional GQA, tied embeddings, no biases.

Only the network lives here. Training loops, sampling and tokenisation are elsewhere; the KV cache is
whatever object the sampler passes in (see `models.sampler.KVCache` for the small protocol it follows).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE_INDEX = -100


@dataclass
class GPTConfig:
    vocab_size: int
    n_layer: int = 8
    n_embd: int = 192
    n_head: int = 6
    n_kv_head: int = 2  # < n_head means grouped-query attention
    ffn_hidden: int = 512  # SwiGLU inner width
    max_seq_len: int = 1024
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-6
    tie_embeddings: bool = True

    def __post_init__(self):
        for name in ("vocab_size", "n_layer", "n_embd", "n_head", "n_kv_head", "ffn_hidden", "max_seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1 (got {value!r})")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_kv_head={self.n_kv_head} does not divide n_head={self.n_head}")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError("head_dim must be even for RoPE")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def rope_tables(cfg: GPTConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of shape (max_seq_len, head_dim // 2), rotate-half convention as in Llama/Qwen."""
    half = cfg.head_dim // 2
    inv_freq = 1.0 / cfg.rope_theta ** (torch.arange(half, dtype=torch.float64) / half)
    angles = torch.outer(torch.arange(cfg.max_seq_len, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (B, H, T, D); cos/sin broadcast to (B or 1, 1, T, D/2)
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.n_kv_head, cfg.head_dim
        # q, k and v in one matmul: fewer, larger matmuls are what a CPU is good at.
        self.qkv_proj = nn.Linear(cfg.n_embd, (cfg.n_head + 2 * cfg.n_kv_head) * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x, cos, sin, kv_cache=None, attn_mask=None):
        B, T, C = x.shape
        qkv = self.qkv_proj(x).view(B, T, self.n_head + 2 * self.n_kv_head, self.head_dim).transpose(1, 2)
        n_qk = self.n_head + self.n_kv_head
        qk = apply_rope(qkv[:, :n_qk], cos, sin)  # q and k heads rotated together: half the ops
        q, k, v = qk[:, :self.n_head], qk[:, self.n_head:], qkv[:, n_qk:]
        if kv_cache is not None and kv_cache.decoding:  # the cache knows its layout (models.sampler.KVCache)
            y = kv_cache.attend(self.layer_idx, q, k, v)
        else:
            if kv_cache is not None:
                k, v = kv_cache.update(self.layer_idx, k, v)
            y = self._sequence_attention(q, k, v, attn_mask)
        return self.o_proj(y.to(x.dtype).transpose(1, 2).reshape(B, T, C))

    def _sequence_attention(self, q, k, v, attn_mask):
        """Causal (or masked) attention over a whole sequence with SDPA (flash kernel on CPU too).

        (Running it in fp32 under CPU autocast was tried: no faster in a full training step.)
        """
        k, v = k.to(q.dtype), v.to(q.dtype)  # an fp32 cache may meet a bf16 query under autocast
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=attn_mask is None,
                                              enable_gqa=self.n_kv_head != self.n_head)


class SwiGLU(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.gate_up = nn.Linear(cfg.n_embd, 2 * cfg.ffn_hidden, bias=False)
        self.down = nn.Linear(cfg.ffn_hidden, cfg.n_embd, bias=False)

    def forward(self, x):
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig, layer_idx: int):
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.n_embd, eps=cfg.norm_eps)
        self.attn = Attention(cfg, layer_idx)
        self.mlp_norm = nn.RMSNorm(cfg.n_embd, eps=cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(self, x, cos, sin, kv_cache=None, attn_mask=None):
        x = x + self.attn(self.attn_norm(x), cos, sin, kv_cache, attn_mask)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.final_norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        cos, sin = rope_tables(config)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        # GPT-2 style: std 0.02 everywhere, and the two projections that write into the residual
        # stream scaled by 1/sqrt(2 * n_layer) so the residual variance does not grow with depth.
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if p.dim() < 2:
                nn.init.ones_(p)  # RMSNorm gains
            elif name.endswith(("o_proj.weight", "down.weight")):
                nn.init.normal_(p, std=residual_std)
            else:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx, targets=None, kv_cache=None, loss_mask=None, *, last_only=False):
        """idx (B, T) token ids -> logits (B, T, V), or (logits, loss) when targets are given.

        loss = mean cross-entropy over positions whose target is not -100 and (if given) loss_mask is
        true. With a kv_cache, idx continues the cached sequence and the cache advances by T.
        last_only=True computes logits for the last position only (what a sampler needs).
        """
        B, T = idx.shape
        if kv_cache is None:
            if T > self.config.max_seq_len:
                raise ValueError(f"sequence length {T} > max_seq_len {self.config.max_seq_len}")
            positions, attn_mask = torch.arange(T, device=idx.device), None
        else:
            positions, attn_mask = kv_cache.positions(T), kv_cache.attn_mask(T)
        cos, sin = self.rope_cos[positions], self.rope_sin[positions]
        if cos.dim() == 3:  # per-row positions (B, T, D/2) -> (B, 1, T, D/2)
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)

        x = self.embed(idx)
        for block in self.blocks:
            x = block(x, cos, sin, kv_cache, attn_mask)
        if kv_cache is not None:
            kv_cache.advance(T)
        x = self.final_norm(x)
        if last_only:
            x = x[:, -1:]
        logits = self.lm_head(x)
        if targets is None:
            return logits
        if loss_mask is not None:
            targets = targets.masked_fill(~loss_mask.bool(), IGNORE_INDEX)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX)
        return logits, loss

    def num_params(self, non_embedding: bool = False) -> int:
        """Unique parameters (a tied embedding counts once); non_embedding drops the embedding table."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.embed.weight.numel() if non_embedding else n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token: 6 * N_matmul + 12 * n_layer * n_embd * seq_len.

        N_matmul counts every weight used in a matmul: the blocks plus the output layer (the embedding
        lookup is free, so a tied table counts once, as the head). The factor 6 = 2 (multiply-add) x 3
        (forward + backward). The attention term is QK^T and AV, 2 * 2 * n_embd * seq_len per layer
        forward, x3 for training, counted over the full (non-causal) length as in PaLM/nanoGPT.
        """
        cfg = self.config
        T = seq_len or cfg.max_seq_len
        n_matmul = sum(p.numel() for p in self.blocks.parameters() if p.dim() == 2)
        n_matmul += self.lm_head.weight.numel()
        return 6 * n_matmul + 12 * cfg.n_layer * cfg.n_embd * T
