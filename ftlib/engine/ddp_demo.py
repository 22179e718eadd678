"""Data parallelism you can run on a laptop: DDP with the gloo backend on CPU processes.

    torchrun --standalone --nproc_per_node=2 -m ftlib.engine.ddp_demo --steps 8 --out ddp.json

Every process holds a full copy of a tiny Llama and takes its own slice of each global batch.
After ``backward`` DDP all-reduces (averages) the gradients, so every copy takes the same
optimiser step as one process would on the whole batch. :func:`run` with ``world_size=1`` is that
single process; the notebook and the tests check the two loss curves agree.
"""
from __future__ import annotations

import argparse
import json
import os

import torch

VOCAB, SEQ_LEN = 64, 32


def make_data(n_rows: int = 256, seed: int = 0) -> torch.Tensor:
    """Learnable toy sequences: x[t] = (start + stride * t) mod VOCAB. Shape (n_rows, SEQ_LEN)."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(0, VOCAB, (n_rows, 1), generator=g)
    stride = torch.randint(1, 8, (n_rows, 1), generator=g)
    return (start + stride * torch.arange(SEQ_LEN)) % VOCAB


def make_model(seed: int = 0):
    """The same tiny Llama on every rank: same seed, same initial weights."""
    from ftlib.engine.models import TinyConfig, tiny_llama
    torch.manual_seed(seed)
    return tiny_llama(TinyConfig(vocab_size=VOCAB, hidden_size=32, n_layers=2, n_heads=2, n_kv_heads=1,
                                 intermediate_size=64, max_seq_len=SEQ_LEN))


def run(steps: int, global_batch: int = 16, lr: float = 3e-3, rank: int = 0, world_size: int = 1,
        seed: int = 0) -> list[float]:
    """Train for ``steps``; return the loss of every step averaged over the global batch.

    With ``world_size > 1`` (inside torchrun) the model is wrapped in DDP and rank r takes rows
    ``[r * local, (r + 1) * local)`` of each global batch.
    """
    assert global_batch % world_size == 0, "the global batch must split evenly over the ranks"
    local = global_batch // world_size
    data, model = make_data(seed=seed), make_model(seed)
    if world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)  # broadcasts rank 0's weights
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    losses = []
    for step in range(steps):
        rows = torch.arange(step * global_batch, (step + 1) * global_batch) % len(data)
        x = data[rows[rank * local:(rank + 1) * local]]          # (local, SEQ_LEN)
        loss = model(input_ids=x, labels=x).loss                 # mean over this rank's tokens
        optimizer.zero_grad(set_to_none=True)
        loss.backward()                                          # DDP: gradients averaged over ranks here
        optimizer.step()
        logged = loss.detach().clone()
        if world_size > 1:  # the loss of the global batch = mean of the equal-sized local means
            torch.distributed.all_reduce(logged)
            logged /= world_size
        losses.append(logged.item())
    return losses


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="optimiser steps")
    parser.add_argument("--global-batch", type=int, default=16, help="rows per step, over all ranks")
    parser.add_argument("--out", default="ddp_losses.json", help="rank 0 writes the losses here")
    args = parser.parse_args(argv)

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    torch.set_num_threads(1)  # one core per process: the ranks share the machine
    if world_size > 1:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # stay on loopback
        torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    losses = run(args.steps, args.global_batch, rank=rank, world_size=world_size)
    if rank == 0:
        with open(args.out, "w") as f:
            json.dump({"world_size": world_size, "global_batch": args.global_batch, "losses": losses}, f)
    if world_size > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
