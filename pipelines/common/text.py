"""How a problem becomes model text, and a model's completion becomes a solution for the verifier.

Training text:  <bos><question> {problem} {question} </question><solution> {steps} </solution><answer> {n} </answer><eos>
Prompt:         everything up to and including <solution>; the model writes the rest.
"""
from __future__ import annotations

QUESTION, QUESTION_END = "<question>", "</question>"
SOLUTION, SOLUTION_END = "<solution>", "</solution>"
ANSWER, ANSWER_END = "<answer>", "</answer>"


def prompt_text(problem) -> str:
    return f"{QUESTION} {problem.problem} {problem.question} {QUESTION_END} {SOLUTION}"


def completion_text(problem) -> str:
    return f"{' '.join(problem.steps)} {SOLUTION_END} {ANSWER} {problem.answer} {ANSWER_END}"


def training_text(problem) -> str:
    return f"{prompt_text(problem)} {completion_text(problem)}"


def encode_prompt(tokenizer, problem) -> list[int]:
    return [tokenizer.bos_id] + tokenizer.encode(prompt_text(problem))


def encode_example(tokenizer, problem) -> tuple[list[int], int]:
    """Token ids of the whole example (bos ... eos) and where the completion starts."""
    prompt = encode_prompt(tokenizer, problem)
    return prompt + tokenizer.encode(completion_text(problem)) + [tokenizer.eos_id], len(prompt)


def completion_to_solution(tokenizer, ids: list[int]) -> str:
    """The verifier reads `Define ...` steps and `<answer> n`: decoding the completion is enough."""
    return tokenizer.decode([i for i in ids if i != tokenizer.eos_id])
