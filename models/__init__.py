"""The model package: network, size presets, sampler and tokenizer."""
from models.gpt import GPT, GPTConfig
from models.presets import PRESETS, model_config
from models.sampler import KVCache, autocast_context, generate, sample_next
from models.speed import maybe_compile
from models.tokenizer import SPECIAL_TOKENS, Tokenizer, build_tokenizer

__all__ = ["GPT", "GPTConfig", "PRESETS", "model_config", "KVCache", "generate", "sample_next",
           "autocast_context", "maybe_compile", "SPECIAL_TOKENS", "Tokenizer", "build_tokenizer"]
