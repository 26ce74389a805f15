"""gsm_synth: GSM-Infinite-style math word problems with an exact operation count, and their verifier."""
from .context import ContextError, get_context, list_contexts, register_context_dir
from .dataset import parse_ops, rows, write_jsonl
from .pools import POOLS, overlap, pool_of
from .problem import MODES, Problem, generate
from .vocab import phrases, vocabulary
from .verify import ERROR_KINDS, Verdict, VerifyError, verify

__all__ = ["generate", "Problem", "MODES", "POOLS", "pool_of", "overlap", "list_contexts", "get_context",
           "register_context_dir", "ContextError", "verify", "Verdict", "VerifyError", "ERROR_KINDS", "vocabulary", "phrases", "rows", "write_jsonl", "parse_ops"]
