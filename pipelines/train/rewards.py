"""Rewards for the RL stage, computed on decoded completions.

    outcome   1 if the final answer is right
    process   alpha * outcome + (1 - alpha) * process score, where the process score is the fraction of
              the gold (necessary) parameters defined with the right parents and value, minus
              `extra_penalty` per extra (unneeded) step, clipped to [0, 1] (the CMU study's reward counts
              each extra node as one error; the paper formula lets a wrong answer keep process credit)
    strict    outcome, but only when the whole process verifies (gsm_synth's process_correct)
    ttrl      no labels: the majority of the m votes' answers is the pseudo-label and a sample's reward
              is 1 when its answer agrees with it (TTRL, arXiv 2504.16084); m = reward.votes votes are
              drawn, the first n (group_size) are rewarded and trained on

A completion cut at max_new_tokens (no EOS) gets reward 0 and casts no TTRL vote.

The ground truth reaches TTRL only through `truth_metrics`, a logging function the trainer calls after
the rewards are fixed: `ttrl_rewards` takes answers alone and `score_group` never hands it the problem.
Logged for ttrl: label_acc (pseudo-label = truth), reward_acc (pseudo-reward = true reward over the n
trained samples: TTRL's "lucky hits" keep it high when the label is wrong), majority_ratio (top answer's
count / m) and true_reward (the outcome reward the truth would have given).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from gsm_synth import verify

from .config import RewardConfig

from pipelines.common.config import ConfigError
from pipelines.common.text import completion_to_solution

KINDS = ("outcome", "process", "strict", "ttrl")
# truth_metrics keys that only some prompts have (ttrl: prompts whose label is wrong)
SOME_PROMPTS = ("wrong_label_reward_acc",)
# The verifier's answer convention (last "Answer: n" or "<answer> n"), read without the problem.
_ANSWER = re.compile(r"(?:Answer:\s*|<answer>\s*)(-?\d{1,12})")


def check_reward(cfg: RewardConfig, group_size: int) -> None:
    if cfg.kind not in KINDS:
        raise ConfigError(f"unknown reward.kind '{cfg.kind}' (valid: {', '.join(KINDS)})")
    if not 0.0 <= cfg.alpha <= 1.0:
        raise ConfigError(f"reward.alpha must be in [0, 1] (got {cfg.alpha})")
    if cfg.extra_penalty < 0:
        raise ConfigError(f"reward.extra_penalty must be >= 0 (got {cfg.extra_penalty})")
    if cfg.kind == "ttrl" and cfg.votes < group_size:
        raise ConfigError(f"ttrl trains on the first n of m votes: group_size n={group_size} > "
                          f"reward.votes m={cfg.votes}")


def samples_per_prompt(cfg: RewardConfig, group_size: int) -> int:
    """How many completions the rollout draws per prompt: m votes for ttrl, else the group."""
    return cfg.votes if cfg.kind == "ttrl" else group_size


@dataclass
class Completion:
    ids: list[int]
    text: str
    cut: bool  # no EOS within max_new_tokens: reward 0, no vote
    answer: int | None  # last stated answer; None when there is none or the completion was cut


def extract_answer(text: str) -> int | None:
    found = _ANSWER.findall(text)
    return int(found[-1]) if found else None


def read_completion(tokenizer, ids: list[int], max_new_tokens: int) -> Completion:
    text = completion_to_solution(tokenizer, ids)
    cut = tokenizer.eos_id not in ids and len(ids) >= max_new_tokens
    return Completion(list(ids), text, cut, None if cut else extract_answer(text))


# ------------------------------------------------------------------------------------ labeled rewards

def process_score(verdict, extra_penalty: float = 1.0) -> float:
    need = max(1, verdict.necessary_params)
    extra = min(verdict.extra_params, need)
    return min(1.0, max(0.0, (verdict.correct_params - extra_penalty * extra) / need))


def labeled_reward(cfg: RewardConfig, verdict) -> float:
    outcome = float(verdict.answer_correct)
    if cfg.kind == "outcome":
        return outcome
    if cfg.kind == "strict":
        return float(verdict.process_correct)  # process_correct implies the right answer
    if cfg.kind == "process":
        return cfg.alpha * outcome + (1.0 - cfg.alpha) * process_score(verdict, cfg.extra_penalty)
    raise ConfigError(f"reward.kind '{cfg.kind}' needs no label")


# ------------------------------------------------------------------------------------------------ ttrl

def majority_vote(answers: list[int | None]) -> tuple[int | None, int]:
    """(label, its count). None never votes; ties go to the answer counted first (TTRL's most_common)."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None, 0
    return counts.most_common(1)[0]


def ttrl_rewards(answers: list[int | None], n: int) -> tuple[list[float], int | None, float]:
    """TTRL from the answers of m votes alone: (rewards of the first n, pseudo-label, majority ratio)."""
    label, count = majority_vote(answers)
    rewards = [float(label is not None and a == label) for a in answers[:n]]
    return rewards, label, count / max(1, len(answers))


# ---------------------------------------------------------------------------------------------- groups

@dataclass
class GroupRewards:
    rewards: list[float]  # of the n trained samples (the first n completions)
    label: int | None = None  # ttrl pseudo-label
    majority_ratio: float | None = None  # ttrl: top answer's count / m
    verdicts: list = field(default_factory=list)  # labeled kinds: reused by truth_metrics


def score_group(cfg: RewardConfig, problem, completions: list[Completion], n: int) -> GroupRewards:
    """Training rewards of one prompt's group. For ttrl the problem is not even passed on."""
    if cfg.kind == "ttrl":
        rewards, label, ratio = ttrl_rewards([c.answer for c in completions], n)
        return GroupRewards(rewards, label, ratio)
    verdicts = [verify(problem, c.text) for c in completions[:n]]
    rewards = [0.0 if c.cut else labeled_reward(cfg, v) for c, v in zip(completions, verdicts)]
    return GroupRewards(rewards, verdicts=verdicts)


def truth_metrics(cfg: RewardConfig, problem, completions: list[Completion], group: GroupRewards,
                  n: int) -> dict[str, float]:
    """Logging only, never training: how the n trained samples fare against the true answer."""
    verdicts = group.verdicts or [verify(problem, c.text) for c in completions[:n]]
    correct = [v.answer_correct and not c.cut for c, v in zip(completions, verdicts)]
    out = {"acc": sum(correct) / n, "pass_n": float(any(correct)),
           "process_acc": sum(v.process_correct and not c.cut for c, v in zip(completions, verdicts)) / n,
           "cut_frac": sum(c.cut for c in completions[:n]) / n}
    if cfg.kind == "ttrl":
        out["label_acc"] = float(group.label is not None and group.label == problem.answer)
        out["reward_acc"] = sum((r > 0.5) == t for r, t in zip(group.rewards, correct)) / n
        out["majority_ratio"] = group.majority_ratio
        out["true_reward"] = out["acc"]
        if group.label is not None and not out["label_acc"]:
            # "lucky hits": how often the rewards are right when the label is wrong. Every rewarded sample is
            # then wrong, so this is 1 - acc - (share rewarded): it falls when samples pile onto the wrong label
            out["wrong_label_reward_acc"] = out["reward_acc"]
    return out
