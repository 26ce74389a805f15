"""Named model sizes. The vocabulary and context length come from the data, so they are filled in later."""
from __future__ import annotations

from dataclasses import replace

from models.gpt import GPTConfig

_PLACEHOLDER_VOCAB = 1  # replaced by model_config()

PRESETS: dict[str, GPTConfig] = {
    # Unit tests: builds and runs in milliseconds.
    "tiny": GPTConfig(vocab_size=_PLACEHOLDER_VOCAB, n_layer=2, n_embd=32, n_head=4, n_kv_head=2,
                      ffn_hidden=64),
    # The default on a 2-core CPU, and what `preset=small` studies train: ~1M parameters, 4 layers x 128,
    # head size 64. Training is compute-bound, so tokens per minute scale as 1/params (docs/experiments.md).
    "small": GPTConfig(vocab_size=_PLACEHOLDER_VOCAB, n_layer=4, n_embd=128, n_head=2, n_kv_head=1,
                       ffn_hidden=384),
    # The CMU study's ~100M Qwen2-like model (GPU only): 12 x 768, 12 heads / 2 KV heads.
    "paper": GPTConfig(vocab_size=_PLACEHOLDER_VOCAB, n_layer=12, n_embd=768, n_head=12, n_kv_head=2,
                       ffn_hidden=3072, rope_theta=1e6),
}


def model_config(preset: str, vocab_size: int, max_seq_len: int) -> GPTConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    return replace(PRESETS[preset], vocab_size=vocab_size, max_seq_len=max_seq_len)
