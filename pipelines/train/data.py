"""A deterministic, resumable stream of packed training blocks drawn from a gsm_synth mixture.

Block k is a pure function of (seed, k): its documents are problems seeded by (seed, k, j). So a resumed
run asks for blocks from `start` on and sees exactly what an unbroken run would have seen, and no data
is stored anywhere.
"""
from __future__ import annotations

import torch
from torch.utils.data import IterableDataset, get_worker_info

from pipelines.common.mixture import Mixture
from pipelines.common.text import encode_example

DOCS_PER_BLOCK = 1024  # index space per block; a block never holds this many problems


def pack_block(mixture: Mixture, tokenizer, seed: int, k: int, seq_len: int, prompt_weight: float):
    """(inputs, targets, loss weights, solution mask) of block k: whole problems back to back, the last one
    cut at seq_len. Targets in a solution weigh 1, targets in the problem text `prompt_weight`."""
    ids: list[int] = []
    is_solution: list[bool] = []
    j = 0
    while len(ids) < seq_len + 1:
        example, solution_start = encode_example(tokenizer, mixture.problem(seed, k * DOCS_PER_BLOCK + j))
        ids.extend(example)
        is_solution.extend([False] * solution_start + [True] * (len(example) - solution_start))
        j += 1
    x = torch.tensor(ids[:seq_len], dtype=torch.long)
    y = torch.tensor(ids[1:seq_len + 1], dtype=torch.long)
    sol = torch.tensor(is_solution[1:seq_len + 1], dtype=torch.bool)
    w = torch.where(sol, 1.0, prompt_weight).float()
    return x, y, w, sol


class BlockStream(IterableDataset):
    """Blocks for optimizer steps start, start+1, ... forever (the trainer stops at its budget).

    stride = (world_size, rank, batch_size): step s on rank r uses blocks (s*W + r)*B .. +B-1, so every
    rank of a DDP run reads its own blocks and the total stream does not depend on how it is split. With
    several DataLoader workers, worker i makes micro-batches i, i + workers, ... of the stream: the loader
    takes one batch from each worker in turn, so the order is the one-process order.
    """

    def __init__(self, mixture: Mixture, tokenizer, seed: int, seq_len: int, prompt_weight: float,
                 start: int = 0, stride: tuple[int, int, int] = (1, 0, 1), micro_batch: int | None = None):
        self.mixture, self.tokenizer, self.seed = mixture, tokenizer, seed
        self.seq_len, self.prompt_weight, self.start, self.stride = seq_len, prompt_weight, start, stride
        self.micro_batch = micro_batch or stride[2]

    def __iter__(self):
        world, rank, batch = self.stride
        info = get_worker_info()
        workers, me = (info.num_workers, info.id) if info else (1, 0)
        micro_per_step = batch // self.micro_batch
        index = self.start * micro_per_step + me  # micro-batches since the stream's step 0, in the loader's order
        while True:
            step, part = divmod(index, micro_per_step)
            first = (step * world + rank) * batch + part * self.micro_batch
            for k in range(first, first + self.micro_batch):
                yield pack_block(self.mixture, self.tokenizer, self.seed, k, self.seq_len, self.prompt_weight)
            index += workers
