"""LoRA from scratch: a frozen linear layer plus a trainable low-rank update (Hu et al., 2021).

    y = W0 x + (alpha / r) * B A x          W0: (out, in) frozen, A: (r, in), B: (out, r)

A starts kaiming-uniform and B starts at zero, so at step 0 the wrapped model is exactly the
base model; training moves only A and B. The names follow PEFT (``base_layer``, ``lora_A``,
``lora_B``, ``scaling``, ``get_delta_weight``, ``merge``, ``unmerge``, ``merge_and_unload``) so
that what you learn here reads straight into ``peft``'s code and checkpoints.

    model = inject_lora(model, target_modules=["q_proj", "v_proj"], r=8, alpha=16)
    count_trainable(model)           # only A and B
    merge_and_unload(model)          # back to plain nn.Linear with W0 + scaling * B @ A

Also here: :class:`BottleneckAdapter` (Houlsby et al., 2019), the adapter LoRA replaced,
:func:`linear_merge`, the weighted average of fine-tuned weights that mergekit's ``linear`` does,
and :func:`init_prefix_from_text`, which starts PEFT's prefix tuning from a real text's keys and
values instead of random numbers.
"""
from __future__ import annotations

import math

import torch
from torch import nn

# PEFT's "all-linear" means every nn.Linear except the output head.
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL_LINEAR = "all-linear"


class LoRALinear(nn.Module):
    """Wrap ``base_layer`` (an ``nn.Linear``, frozen) with a rank-``r`` update ``B @ A``.

    Input ``x`` of shape ``(..., in_features)``, output ``(..., out_features)``.
    """

    def __init__(self, base_layer: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if r < 1:
            raise ValueError(f"LoRA rank r must be >= 1, got {r}")
        self.base_layer = base_layer
        self.r, self.alpha = r, alpha
        self.scaling = alpha / r  # keeps the update's size roughly independent of r
        w = base_layer.weight
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False, device=w.device, dtype=w.dtype)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False, device=w.device, dtype=w.dtype)
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.reset_lora_parameters()
        for p in self.base_layer.parameters():
            p.requires_grad_(False)

    def reset_lora_parameters(self) -> None:
        # Same as PEFT's default: A ~ kaiming-uniform(a=sqrt 5), B = 0, so B @ A = 0 at the start.
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)                       # (..., out)  W0 x (+ bias)
        if self.merged:                                   # the update already lives in W0
            return result
        update = self.lora_B(self.lora_A(self.lora_dropout(x)))  # (..., in) -> (..., r) -> (..., out)
        return result + update * self.scaling

    def get_delta_weight(self) -> torch.Tensor:
        """The update as a full matrix, shape ``(out, in)``: ``scaling * B @ A``."""
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update into ``base_layer.weight``: inference then costs nothing extra."""
        if not self.merged:
            self.base_layer.weight += self.get_delta_weight().to(self.base_layer.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the update again (exact up to floating-point rounding)."""
        if self.merged:
            self.base_layer.weight -= self.get_delta_weight().to(self.base_layer.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}, merged={self.merged}"


def _is_target(name: str, module: nn.Module, target_modules, exclude: tuple[str, ...]) -> bool:
    """PEFT's rule: a module matches a target if its name equals it or ends with ``"." + target``."""
    if not isinstance(module, nn.Linear) or isinstance(module, (LoRALinear,)):
        return False
    last = name.rsplit(".", 1)[-1]
    if target_modules == ALL_LINEAR:
        return last not in exclude
    return any(name == t or name.endswith("." + t) for t in target_modules)


def inject_lora(model: nn.Module, target_modules=ATTENTION, r: int = 8, alpha: float = 16.0,
                dropout: float = 0.0, exclude: tuple[str, ...] = ("lm_head",)) -> nn.Module:
    """Freeze ``model`` and replace each matching ``nn.Linear`` by a :class:`LoRALinear`, in place.

    ``target_modules`` is a list of name suffixes (``["q_proj", "v_proj"]``) or ``"all-linear"``
    (every linear layer except the names in ``exclude``, as in PEFT). Returns ``model``.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    targets = [(name, m) for name, m in model.named_modules() if _is_target(name, m, target_modules, exclude)]
    if not targets:
        raise ValueError(f"no nn.Linear matches target_modules={target_modules!r}")
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(module, r=r, alpha=alpha, dropout=dropout))
    return model


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every :class:`LoRALinear` in ``model`` by its module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge_and_unload(model: nn.Module) -> nn.Module:
    """Merge every LoRA update into its base layer and put the plain ``nn.Linear`` back, in place."""
    for name, layer in lora_layers(model).items():
        layer.merge()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer.base_layer)
    return model


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` for every parameter that will receive a gradient."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts, tied weights counted once (like PEFT's
    ``get_nb_trainable_parameters``)."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def lora_parameter_count(shapes: list[tuple[int, int]], r: int) -> int:
    """Trainable numbers of LoRA on linear layers of the given ``(out, in)`` shapes: ``r*(in+out)`` each.

    >>> lora_parameter_count([(4096, 4096)], r=8)
    65536
    """
    return sum(r * (n_in + n_out) for n_out, n_in in shapes)


@torch.no_grad()
def copy_lora_to_peft(model: nn.Module, peft_model: nn.Module, adapter_name: str = "default") -> int:
    """Copy every ``lora_A``/``lora_B`` (and ``scaling``-relevant shapes) of ours into a PEFT model
    wrapping the same architecture. Returns the number of layers copied.

    Our module ``model.layers.0.self_attn.q_proj`` is PEFT's ``base_model.model.`` + that name.
    """
    copied = 0
    for name, layer in lora_layers(model).items():
        theirs = peft_model.get_submodule("base_model.model." + name)
        if theirs.scaling[adapter_name] != layer.scaling:
            raise ValueError(f"{name}: PEFT scaling {theirs.scaling[adapter_name]} != ours {layer.scaling}")
        theirs.lora_A[adapter_name].weight.copy_(layer.lora_A.weight)
        theirs.lora_B[adapter_name].weight.copy_(layer.lora_B.weight)
        copied += 1
    return copied


class BottleneckAdapter(nn.Module):
    """Houlsby adapter: ``y = h + up(act(down(h)))`` after ``base_layer``, which stays frozen.

    ``h = base_layer(x)`` of width ``d``; down ``d -> bottleneck``, up ``bottleneck -> d``. ``up``
    starts at zero, so the wrapped model starts as the base model (as LoRA's ``B = 0``). Unlike
    LoRA it adds a nonlinearity in series, so it cannot be merged away: inference gets slower.
    """

    def __init__(self, base_layer: nn.Module, d: int, bottleneck: int = 16):
        super().__init__()
        self.base_layer = base_layer
        w = next(base_layer.parameters())
        self.down = nn.Linear(d, bottleneck, device=w.device, dtype=w.dtype)
        self.up = nn.Linear(bottleneck, d, device=w.device, dtype=w.dtype)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        for p in self.base_layer.parameters():
            p.requires_grad_(False)

    def forward(self, *args, **kwargs):
        h = self.base_layer(*args, **kwargs)              # (..., d)
        return h + self.up(nn.functional.gelu(self.down(h)))


def inject_adapters(model: nn.Module, target_modules=("mlp",), d: int | None = None,
                    bottleneck: int = 16) -> nn.Module:
    """Freeze ``model`` and wrap each module whose name ends with a target in a
    :class:`BottleneckAdapter` (default: after every MLP block, as Houlsby did). In place."""
    for p in model.parameters():
        p.requires_grad_(False)
    d = d or model.config.hidden_size
    names = [n for n, _ in model.named_modules() if any(n == t or n.endswith("." + t) for t in target_modules)]
    if not names:
        raise ValueError(f"no module matches target_modules={target_modules!r}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, BottleneckAdapter(getattr(parent, child), d, bottleneck))
    return model


@torch.no_grad()
def linear_merge(state_dicts: list[dict], weights: list[float]) -> dict:
    """Weighted sum of models' weights, key by key (mergekit's ``linear`` method):
    ``merged[k] = sum_i weights[i] * state_dicts[i][k]``. With weights summing to 1 and every
    model fine-tuned from the same base ``W0``, this is ``W0 + sum_i weights[i] * delta_i``.

    >>> linear_merge([{"w": torch.tensor([1.0])}, {"w": torch.tensor([3.0])}], [0.5, 0.5])
    {'w': tensor([2.])}
    """
    if len(state_dicts) != len(weights) or not state_dicts:
        raise ValueError("give one weight per state dict")
    return {k: sum(w * sd[k] for w, sd in zip(weights, state_dicts)) for k in state_dicts[0]}


@torch.no_grad()
def init_prefix_from_text(peft_model, input_ids: torch.Tensor, adapter_name: str = "default") -> None:
    """Start a PEFT prefix-tuning model from the keys and values its frozen base computes for a
    real text (Li & Liang, 2021, initialize the prefix with activations of real words).

    PEFT's default prefix is random N(0, 1) numbers in every layer's keys and values, nothing
    like the model's own, so before any training it can wreck the model. With this start the
    prefix-tuned model is exactly the base model reading ``input_ids`` first (tested), and
    training moves it from there.

    ``input_ids``: (num_virtual_tokens,) or (1, num_virtual_tokens) token ids of the text.
    PEFT's prefix is one row per virtual token: for layer 0..L-1, its key then its value, each
    (kv_heads x head_dim) flattened; needs ``prefix_projection=False``.
    """
    config = peft_model.peft_config[adapter_name]
    if getattr(config, "prefix_projection", False):
        raise ValueError("init_prefix_from_text needs prefix_projection=False (the prefix is stored as is)")
    ids = input_ids.reshape(1, -1)
    if ids.shape[1] != config.num_virtual_tokens:
        raise ValueError(f"{ids.shape[1]} tokens for {config.num_virtual_tokens} virtual tokens")
    base = peft_model.get_base_model()                 # the frozen model, without PEFT's prefix
    cache = base(input_ids=ids.to(base.device), use_cache=True).past_key_values
    rows = []
    for layer in cache.layers:                           # keys, values: (1, kv_heads, n, head_dim)
        rows += [layer.keys[0].transpose(0, 1), layer.values[0].transpose(0, 1)]   # (n, kv_heads, hd)
    prefix = torch.stack(rows, dim=1).reshape(ids.shape[1], -1)   # (n, layers * 2 * kv_heads * hd)
    peft_model.prompt_encoder[adapter_name].load_prompt_embeddings(prefix)
