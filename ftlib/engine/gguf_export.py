"""Write a Llama-family model to GGUF with ``gguf.GGUFWriter``, and read one back with transformers.

GGUF (llama.cpp's file format) is one file: key-value metadata (architecture, sizes, the tokenizer,
the chat template), then every tensor under llama.cpp's name, each in its own type. The writer here
does what llama.cpp's ``convert_hf_to_gguf.py`` does for a Llama, in a page:

- **names**: ``model.layers.3.self_attn.q_proj.weight`` -> ``blk.3.attn_q.weight`` (:data:`NAMES`);
- **Q and K rows permuted**: llama.cpp applies RoPE to pairs (i, i + 1) where Hugging Face pairs
  (i, i + d/2), so the rows of each head are interleaved (:func:`permute`); readers undo it;
- **types**: matrices in the chosen format (F32, F16, or the blocks of :mod:`ftlib.cores.ggml_quant`),
  norms always F32, as llama.cpp does; a matrix whose rows are not whole blocks of 32 (the course
  model's 176-wide MLP) stays F32 (:func:`tensor_types` lists what each tensor got);
- **tokenizer**: the byte-level BPE as ``gpt2`` (tokens, their types, merges, special ids).

:func:`load_gguf` reads a file back into a transformers model (dequantized to fp32), which is how
the course compares formats: same items, same code, only the weights differ.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ftlib.cores.ggml_quant import BLOCK, quantize_q4_0, quantize_q8_0

NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
         "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
FORMATS = ("F32", "F16", "Q8_0", "Q4_0")


def gguf_name(hf_name: str) -> str:
    """llama.cpp's name of a Hugging Face Llama tensor."""
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    if hf_name in top:
        return top[hf_name]
    parts = hf_name.split(".")                       # model.layers.<i>.<module>.<proj>.weight
    if parts[:2] != ["model", "layers"]:
        raise KeyError(f"no GGUF name for {hf_name}")
    module = ".".join(parts[3:-1])
    return f"blk.{parts[2]}.{NAMES[module]}.{parts[-1]}"


def permute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Interleave each head's rows as llama.cpp's RoPE expects (the converter's ``permute``)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _type(w: torch.Tensor, fmt: str) -> str:
    """The type a tensor gets in a file of ``fmt``: matrices in ``fmt``, anything 1-D in F32, and a
    matrix whose rows are not whole blocks of 32 in F32 too."""
    if w.dim() < 2 or (fmt in ("Q8_0", "Q4_0") and w.shape[-1] % BLOCK):
        return "F32"
    return fmt


def _tensor(w: torch.Tensor, fmt: str):
    """``(data, raw_dtype)`` for GGUFWriter.add_tensor."""
    import gguf
    w, kind = w.detach().to(torch.float32), _type(w, fmt)
    if kind in ("F32", "F16"):
        return w.numpy().astype(np.float16 if kind == "F16" else np.float32), None
    quantize = {"Q8_0": quantize_q8_0, "Q4_0": quantize_q4_0}[kind]
    rows = quantize(w).reshape(w.shape[0], -1)            # one row of blocks per matrix row
    return rows.numpy().astype(np.uint8), gguf.GGMLQuantizationType[kind]


def tensor_types(model, fmt: str) -> dict[str, str]:
    """``{gguf name: type}`` that :func:`write_gguf` gives each tensor of ``model`` in ``fmt``."""
    tied = getattr(model.config, "tie_word_embeddings", False)
    return {gguf_name(n): _type(w, fmt) for n, w in model.state_dict().items() if not (n == "lm_head.weight" and tied)}


def _tokenizer(writer, tokenizer, pre: str) -> None:
    """The byte-level BPE as GGUF's ``gpt2`` tokenizer: tokens by id, their types, merges, special ids."""
    import gguf
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = {**spec["model"]["vocab"], **{t["content"]: t["id"] for t in spec["added_tokens"]}}
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    special = {t["content"] for t in spec["added_tokens"] if t.get("special")}
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    for role, add in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id),
                      ("unk", writer.add_unk_token_id), ("pad", writer.add_pad_token_id)):
        token_id = getattr(tokenizer, f"{role}_token_id", None)
        if token_id is not None:
            add(token_id)
    probe = tokenizer("a")["input_ids"]
    writer.add_add_bos_token(bool(probe) and probe[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(bool(probe) and probe[-1] == tokenizer.eos_token_id)
    if getattr(tokenizer, "chat_template", None):
        writer.add_chat_template(tokenizer.chat_template)


def write_gguf(model, tokenizer, path: str | Path, fmt: str = "F32", name: str = "ftcourse",
               pre: str = "default") -> Path:
    """Write ``model`` (a transformers Llama) and its tokenizer to one GGUF file with matrices in ``fmt``.
    ``pre`` names the pre-tokenizer for llama.cpp (``"smollm"`` for SmolLM2; transformers ignores it)."""
    import gguf
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    cfg, path = model.config, Path(path)
    if cfg.model_type != "llama":
        raise ValueError(f"write_gguf writes Llama models; this one is {cfg.model_type!r}")
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    rope = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", getattr(cfg, "rope_theta", 10000.0))
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name(name)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope))
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type({"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
                          "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[fmt])
    _tokenizer(writer, tokenizer, pre)
    tied = getattr(cfg, "tie_word_embeddings", False)
    for hf_name, w in model.state_dict().items():
        if hf_name == "lm_head.weight" and tied:
            continue                                          # llama.cpp reuses token_embd when output is absent
        if hf_name.endswith("q_proj.weight"):
            w = permute(w, cfg.num_attention_heads)
        elif hf_name.endswith("k_proj.weight"):
            w = permute(w, cfg.num_key_value_heads)
        data, raw_dtype = _tensor(w, fmt)
        writer.add_tensor(gguf_name(hf_name), data, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def load_gguf(path: str | Path):
    """``(model, tokenizer)`` from a GGUF file, through transformers (weights dequantized to fp32)."""
    import functools

    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = Path(path)
    bar = gguf_utils.tqdm                          # its per-tensor progress bar would stay in a notebook's output
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    finally:
        gguf_utils.tqdm = bar
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model.eval(), tokenizer


# ---------------------------------------------------------------------------------------------
# llama.cpp's own converter, to check the writer against
# ---------------------------------------------------------------------------------------------
CONVERTER = Path(__file__).resolve().parents[2] / ".venv" / "llama.cpp" / "convert_hf_to_gguf.py"


def convert_with_llama_cpp(model_dir: str | Path, out: str | Path, outtype: str = "f32",
                           converter: Path = CONVERTER) -> Path:
    """Run llama.cpp's ``convert_hf_to_gguf.py`` (from the llama-cpp-python source package, which
    ``./run.sh setup`` unpacks into ``.venv/llama.cpp``) on a saved Hugging Face model folder."""
    import subprocess
    import sys
    if not Path(converter).exists():
        raise FileNotFoundError(f"{converter} is missing: ./run.sh setup unpacks llama.cpp's converter there")
    env = {"PYTHONPATH": str(Path(converter).parent / "gguf-py"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(converter), str(model_dir), "--outfile", str(out), "--outtype", outtype],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"llama.cpp's converter failed:\n{done.stderr[-2000:]}")
    return Path(out)


def compare_gguf(a: str | Path, b: str | Path) -> dict[str, list]:
    """What differs between two GGUF files: tensors (name, type, shape or bytes) and metadata values,
    plus the metadata keys only one of them has."""
    from gguf import GGUFReader

    def read(path):
        r = GGUFReader(str(path))
        tensors = {t.name: (t.tensor_type.name, tuple(int(x) for x in t.shape), np.asarray(t.data)) for t in r.tensors}
        fields = {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}
        return tensors, fields

    (ta, fa), (tb, fb) = read(a), read(b)
    tensors = sorted(set(ta) ^ set(tb)) + [n for n in sorted(set(ta) & set(tb)) if ta[n][:2] != tb[n][:2]
                                           or not np.array_equal(ta[n][2], tb[n][2])]
    return {"tensors": tensors, "values": [k for k in sorted(set(fa) & set(fb)) if fa[k] != fb[k]],
            "only_first": sorted(set(fa) - set(fb)), "only_second": sorted(set(fb) - set(fa))}
