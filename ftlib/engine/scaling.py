"""Scaling out on one machine: DDP, FSDP2 and DeepSpeed ZeRO-1/2/3, run for real on CPU processes.

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m ftlib.engine.scaling spec.json

:func:`launch` does that from Python and returns every rank's report. Each method trains the same
Llama on the same global batches with AdamW (fp32, gloo on CPU; NCCL and bf16 on GPUs):

- ``single``: one process, the reference;
- ``ddp``: every rank holds everything; gradients all-reduced after backward;
- ``fsdp2``: torch's ``fully_shard`` per decoder layer and on the root: parameters, gradients and
  AdamW state sharded (ZeRO-3); a layer's weights are all-gathered just before it runs;
- ``zero1`` / ``zero2`` / ``zero3``: DeepSpeed's ZeRO stages (optimizer state; + gradients; + weights).

Rank ``r`` takes micro-batch rows ``r, r + N, ...`` of each global batch (``N`` ranks), so all
methods see the same rows per optimizer step; with ``accumulation > 1`` each rank runs several
micro-batches before the step. Every rank reports its losses, the bytes it holds per kind of state
(:func:`held_bytes`, counted from the tensors themselves, not the process's RSS; the peak over the
first step's micro-batches and the state after it), and its step times.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

METHODS = ("single", "ddp", "fsdp2", "zero1", "zero2", "zero3")
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "scaling"   # accelerate / DeepSpeed files for GPU clusters
DEEPSPEED = {"zero1": 1, "zero2": 2, "zero3": 3}


@dataclass
class Spec:
    """One run's inputs; every rank reads the same spec."""
    method: str = "ddp"
    steps: int = 6
    global_batch: int = 8             # rows per optimizer step, over all ranks and micro-batches
    micro_batch: int = 2              # rows per forward pass on one rank
    lr: float = 1e-3
    seed: int = 0
    model_dir: str | None = None      # a saved Llama (safetensors); None: a small fresh one (tests)
    rows: str | None = None           # a safetensors file with "rows", (n, seq_len) token ids; None: toy rows
    checkpointing: bool = False       # activation checkpointing in every decoder layer
    threads: int = 1                  # torch threads per rank
    device: str = "cpu"               # "cuda": one GPU per rank, NCCL (not run in the course: no GPUs here)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")

    def accumulation(self, world_size: int) -> int:
        """Micro-batches per rank per optimizer step."""
        per_step = world_size * self.micro_batch
        if self.global_batch % per_step:
            raise ValueError(f"global_batch {self.global_batch} must be a multiple of ranks x micro_batch = {per_step}")
        return self.global_batch // per_step


# ---------------------------------------------------------------------------------------------
# The model, the data and the rows of each micro-batch
# ---------------------------------------------------------------------------------------------
def make_model(spec: Spec):
    """The same model on every rank: loaded from ``spec.model_dir`` or initialised from ``spec.seed``."""
    from ftlib.engine.models import TinyConfig, from_pretrained, tiny_llama
    torch.manual_seed(spec.seed)
    if spec.model_dir:
        model, _ = from_pretrained(spec.model_dir, dtype=torch.float32)
    else:
        model = tiny_llama(TinyConfig(vocab_size=256, hidden_size=64, n_layers=2, n_heads=4, n_kv_heads=2,
                                      intermediate_size=128, max_seq_len=64))
    model.config.use_cache = False
    if spec.checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return model.train()


def load_rows(spec: Spec) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, validation)`` rows, (n, seq_len) token ids: from ``spec.rows`` (tensors ``train``
    and ``val``, see :func:`save_rows`) or toy sequences x[t] = (start + stride * t) mod 256."""
    if spec.rows:
        from safetensors.torch import load_file
        rows = load_file(spec.rows)
        return rows["train"], rows["val"]
    g = torch.Generator().manual_seed(spec.seed)
    start, stride = torch.randint(0, 256, (288, 1), generator=g), torch.randint(1, 8, (288, 1), generator=g)
    rows = (start + stride * torch.arange(32)) % 256
    return rows[:256], rows[256:]


def save_rows(train: torch.Tensor, val: torch.Tensor, path: str | Path) -> Path:
    """Write training and validation rows for :class:`Spec` ``rows`` (safetensors: no pickle)."""
    from safetensors.torch import save_file
    save_file({"train": train.contiguous(), "val": val.contiguous()}, str(path))
    return Path(path)


@torch.no_grad()
def validation_loss(model, val: torch.Tensor, batch: int = 8) -> float:
    """Mean next-token loss on ``val`` (every rank runs the same rows: sharded models need all ranks)."""
    was = model.training
    model.eval()
    losses = [model(input_ids=val[i:i + batch], labels=val[i:i + batch]).loss * len(val[i:i + batch])
              for i in range(0, len(val), batch)]
    model.train(was)
    return (torch.stack(losses).sum() / len(val)).item()


def micro_rows(spec: Spec, step: int, micro: int, rank: int, world_size: int) -> torch.Tensor:
    """Indices of the rows rank ``rank`` takes in micro-batch ``micro`` of optimizer step ``step``."""
    first = step * spec.global_batch + (micro * world_size + rank) * spec.micro_batch
    return torch.arange(first, first + spec.micro_batch)


# ---------------------------------------------------------------------------------------------
# Counting what a rank holds
# ---------------------------------------------------------------------------------------------
def _local(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's local shard (FSDP2), or the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t


def _storages(tensors) -> dict[int, int]:
    """{storage address: bytes} of the distinct storages behind ``tensors`` (views counted once)."""
    out = {}
    for t in tensors:
        if t is not None and t.numel():
            s = _local(t).untyped_storage()
            out[s.data_ptr()] = s.nbytes()
    return out


def _covered(tensors) -> int:
    """Bytes of memory ``tensors`` cover, each byte once: a tensor listed twice, a view inside a flat
    buffer that is also listed, overlapping views all count once; a buffer's unused tail does not count."""
    spans = sorted((t.data_ptr(), t.data_ptr() + t.numel() * t.element_size())
                   for t in (_local(x) for x in tensors if x is not None) if t.numel())
    total, end = 0, None
    for a, b in spans:
        if end is None or a >= end:
            total, end = total + b - a, b
        elif b > end:
            total, end = total + b - end, b
    return total


def _deepspeed_gradients(optimizer) -> tuple[list, list]:
    """DeepSpeed's places for gradients, ``(gradient tensors, communication buffers)``: ZeRO-1/2's
    reduced partitions (``averaged_gradients``, ``grads_in_partition``), ZeRO-3's
    ``grad_partitions_flat_buffer``, the gradients waiting in a reduce bucket, and the buckets'
    fixed-size buffers (``reduce_bucket_size`` elements each: the ZeRO paper's constant buffers)."""
    grads = [t for v in getattr(optimizer, "averaged_gradients", {}).values() for t in (v or [])]
    grads += [getattr(optimizer, "grads_in_partition", None), getattr(optimizer, "grad_partitions_flat_buffer", None)]
    buffers = []
    for bucket in getattr(optimizer, "ipg_buckets", {}).values():
        grads += list(getattr(bucket, "grads", []))
        buffers += bucket.buffer if isinstance(bucket.buffer, list) else [bucket.buffer]
    return grads, buffers


def held_bytes(model, optimizer) -> dict[str, int]:
    """Bytes this rank holds, by kind: ``params`` (the model's weights, or this rank's shard of them),
    ``grads``, ``optimizer`` (AdamW's two moments), ``master`` (fp32 copies of the weights the optimizer
    updates, when they are not the model's own: DeepSpeed keeps them) and ``buffers`` (DeepSpeed's
    reduce buckets, a fixed size set in its config). Each kind counts the memory its tensors cover
    (:func:`_covered`); buffers count their whole storage."""
    params = [getattr(p, "ds_tensor", p) for p in model.parameters()]   # ZeRO-3 keeps only ds_tensor
    inner = getattr(optimizer, "optimizer", optimizer)                  # DeepSpeed wraps torch's AdamW
    updated = [p for group in inner.param_groups for p in group["params"]]
    ds_grads, buffers = _deepspeed_gradients(optimizer)
    grads = [p.grad for p in list(model.parameters()) + updated] + ds_grads
    state = [v for s in inner.state.values() for v in s.values() if torch.is_tensor(v) and v.dim() > 0]
    grad_storages = _storages(grads)
    return {"params": _covered(params), "grads": _covered(grads), "optimizer": _covered(state),
            "master": _covered(params + updated) - _covered(params),
            "buffers": sum(v for k, v in _storages(buffers).items() if k not in grad_storages)}


def saved_activation_bytes(model, ids: torch.Tensor) -> int:
    """Bytes of the tensors autograd keeps from one forward pass for the backward pass (distinct
    storages, parameters excluded): the activation memory that checkpointing trades for time."""
    weights = set(_storages(model.parameters()))
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in weights:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


# ---------------------------------------------------------------------------------------------
# One rank's training loop
# ---------------------------------------------------------------------------------------------
def wrap(spec: Spec, model, world_size: int):
    """``(model, optimizer, deepspeed engine or None)`` for ``spec.method``."""
    make_optimizer = lambda m: torch.optim.AdamW(m.parameters(), lr=spec.lr, betas=(0.9, 0.95),  # noqa: E731
                                                 weight_decay=0.0)
    if spec.method == "ddp":
        model = torch.nn.parallel.DistributedDataParallel(model)
    elif spec.method == "fsdp2":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh(spec.device, (world_size,))
        for layer in model.model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
    elif spec.method in DEEPSPEED:
        import deepspeed
        config = deepspeed_config(spec, world_size)
        engine, optimizer, _, _ = deepspeed.initialize(model=model, optimizer=make_optimizer(model), config=config)
        return engine.module, optimizer, engine
    return model, make_optimizer(model), None


def deepspeed_config(spec: Spec, world_size: int) -> dict:
    """The DeepSpeed config of a CPU run: fp32, torch's AdamW (DeepSpeed's fused ones need compiled ops),
    and no gradient clipping, as in the torch methods: DeepSpeed clips the gradient norm to 1.0 unless
    told otherwise (``gradient_clipping``'s default), which would make its updates differ."""
    return {"train_batch_size": spec.global_batch, "train_micro_batch_size_per_gpu": spec.micro_batch,
            "gradient_accumulation_steps": spec.accumulation(world_size), "gradient_clipping": 0.0,
            "zero_optimization": {"stage": DEEPSPEED[spec.method], "reduce_bucket_size": 2**20,
                                  "allgather_bucket_size": 2**20},
            "zero_allow_untested_optimizer": True, "steps_per_print": 10**9, "wall_clock_breakdown": False}


def _peak(a: dict, b: dict) -> dict:
    """Per kind, the larger of two counts."""
    return {k: max(a.get(k, 0), b[k]) for k in b}


def train(spec: Spec, rank: int = 0, world_size: int = 1) -> dict:
    """Train ``spec.steps`` optimizer steps on this rank; return its report."""
    (rows, val), model = load_rows(spec), make_model(spec)
    if spec.device == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        rows, val, model = rows.to(device), val.to(device), model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    model, optimizer, engine = wrap(spec, model, world_size)
    val_before = validation_loss(engine or model, val)
    accumulation = spec.accumulation(world_size)
    losses, step_s, held = [], [], {}
    for step in range(spec.steps):
        t0 = time.perf_counter()
        total = torch.zeros((), device=rows.device)
        for micro in range(accumulation):
            x = rows[micro_rows(spec, step, micro, rank, world_size) % len(rows)]
            last = micro == accumulation - 1
            if engine:                                      # DeepSpeed counts micro-batches itself: backward
                loss = engine(input_ids=x, labels=x).loss   # scales by 1/accumulation, step() after every
                engine.backward(loss)                       # micro-batch updates only at the last one
                if step == 0:
                    held = _peak(held, held_bytes(model, optimizer))
                engine.step()
            else:
                if spec.method == "fsdp2":
                    model.set_requires_gradient_sync(last)  # reduce-scatter once per step
                with model.no_sync() if spec.method == "ddp" and not last else contextlib.nullcontext():
                    loss = model(input_ids=x, labels=x).loss  # DDP: accumulate locally, all-reduce once per step
                    (loss / accumulation).backward()
                if step == 0:
                    held = _peak(held, held_bytes(model, optimizer))
            total += loss.detach() / accumulation
        if not engine:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if rows.is_cuda:
            torch.cuda.synchronize()                        # GPU work is asynchronous: wait before timing
        step_s.append(time.perf_counter() - t0)
        if world_size > 1:
            torch.distributed.all_reduce(total)
            total /= world_size
        losses.append(total.item())
    held = _peak(held, held_bytes(model, optimizer))             # the state after the last step counts too
    return {"method": spec.method, "rank": rank, "world_size": world_size, "n_params": n_params,
            "accumulation": accumulation, "losses": losses, "step_s": step_s, "bytes": held,
            "val_before": val_before, "val_after": validation_loss(engine or model, val)}


def main(argv=None) -> None:
    spec_path = Path((argv or sys.argv[1:])[0])
    spec = Spec(**json.loads(spec_path.read_text()))
    rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    torch.set_num_threads(spec.threads)
    if spec.device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if world_size > 1:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        torch.distributed.init_process_group("nccl" if spec.device == "cuda" else "gloo", rank=rank, world_size=world_size)
    report = train(spec, rank, world_size)
    (spec_path.parent / f"rank{rank}.json").write_text(json.dumps(report))
    if world_size > 1:
        torch.distributed.destroy_process_group()


# ---------------------------------------------------------------------------------------------
# Launching from a notebook or a test
# ---------------------------------------------------------------------------------------------
def command(spec_path: str | Path, nproc: int) -> list[str]:
    """The command that runs a spec: torchrun with ``nproc`` processes, or plain Python for one."""
    if nproc == 1:
        return [sys.executable, "-m", "ftlib.engine.scaling", str(spec_path)]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "ftlib.engine.scaling", str(spec_path)]


def launch(spec: Spec, nproc: int = 2, timeout: float = 600) -> list[dict]:
    """Run ``spec`` on ``nproc`` CPU processes; return every rank's report, rank 0 first."""
    if (spec.method == "single") != (nproc == 1):
        raise ValueError(f"method {spec.method!r} with {nproc} processes: 'single' runs on exactly one")
    with tempfile.TemporaryDirectory(prefix="ftlib-scaling-") as tmp:
        path = Path(tmp) / "spec.json"
        path.write_text(json.dumps(asdict(spec)))
        env = {**os.environ, "OMP_NUM_THREADS": str(spec.threads), "GLOO_SOCKET_IFNAME": "lo",
               "TORCHELASTIC_ERROR_FILE": str(Path(tmp) / "error.json")}
        done = subprocess.run(command(path, nproc), env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise RuntimeError(f"{spec.method} on {nproc} processes failed (exit {done.returncode}):\n"
                               + "\n".join((done.stderr or done.stdout).splitlines()[-25:]))
        return [json.loads((Path(tmp) / f"rank{r}.json").read_text()) for r in range(nproc)]


# ---------------------------------------------------------------------------------------------
# GPU clusters: accelerate's own reading of a config file
# ---------------------------------------------------------------------------------------------
def accelerate_settings(config_file: str | Path) -> dict[str, str]:
    """What ``accelerate launch --config_file FILE`` would set, read by accelerate's own launcher
    code (unknown keys and contradictions raise): processes, machines, and for FSDP the environment
    variables its plugin reads (``FSDP_*``); for DeepSpeed the DeepSpeed config file it passes on."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env
    args = launch_command_parser().parse_args(["--config_file", str(config_file), "train.py"])
    _validate_launch_command(args)
    out = {"processes": str(args.num_processes), "machines": str(args.num_machines)}
    if args.use_fsdp:
        out.update({k: v for k, v in prepare_multi_gpu_env(args).items()
                    if k.startswith("FSDP_") or k == "ACCELERATE_MIXED_PRECISION"})
    if args.use_deepspeed:
        out["deepspeed_config_file"] = args.deepspeed_config_file
    return out


if __name__ == "__main__":
    main()
