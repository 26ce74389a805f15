"""The generator's options, declared once: the problem style a study sets for all its data, plus the
pool a problem is drawn from. Training mixtures, study tasks and the command line extend these types."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional


@dataclass
class ProblemStyle:
    """How problems look beyond op / context / mode."""
    modulus: Optional[int] = 23  # a prime; None = plain integers (GSM-Infinite's bounds)
    distractors: Optional[int] = None  # unused parameters stated; None = random 0..ceil(op/2)
    shuffle: float = 1.0  # 0 = statements in topological order .. 1 = fully shuffled
    symbols: str = "random"  # random letters (as iGSM) | ordered: a, b, c, ... in step order


@dataclass
class GeneratorOptions(ProblemStyle):
    pool: Optional[str] = None  # None, or one of gsm_synth.POOLS: the problem then belongs to that pool


def style_of(obj) -> dict:
    """The ProblemStyle fields of any object that carries them (a mixture, a study's task, CLI args)."""
    return {f.name: getattr(obj, f.name) for f in fields(ProblemStyle)}


def options_of(obj) -> dict:
    """The GeneratorOptions fields of obj, as keyword arguments for gsm_synth.generate."""
    return {f.name: getattr(obj, f.name) for f in fields(GeneratorOptions)}
