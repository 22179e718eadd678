"""GGUF export: written with gguf.GGUFWriter as llama.cpp's converter does, read back by transformers."""
import pytest
import torch
from gguf import GGUFReader

from ftlib.cores.ggml_quant import dequantize_q8_0, quantize_q8_0
from ftlib.engine.gguf_export import FORMATS, load_gguf, permute, tensor_types, write_gguf

MESSAGES = [{"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "5"}]


def _model(tok):
    from ftlib.engine.models import TinyConfig, tiny_llama
    torch.manual_seed(0)
    return tiny_llama(TinyConfig(vocab_size=len(tok), hidden_size=64, n_layers=2, n_heads=4, n_kv_heads=2,
                                 intermediate_size=48, max_seq_len=128), pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id).eval()


def test_f32_round_trip_gives_the_same_logits_tokens_and_template(tok, tmp_path):
    model = _model(tok)
    text = tok.apply_chat_template(MESSAGES, tokenize=False)
    ids = tok(text, return_tensors="pt").input_ids
    back, back_tok = load_gguf(write_gguf(model, tok, tmp_path / "m.gguf", "F32"))
    with torch.no_grad():
        assert torch.equal(back(ids).logits, model(ids).logits)
    assert back_tok(text)["input_ids"] == ids[0].tolist()
    assert back_tok.apply_chat_template(MESSAGES, tokenize=False) == text


def test_each_format_stores_what_it_says_and_shrinks_the_file(tok, tmp_path):
    model = _model(tok)
    sizes = {fmt: write_gguf(model, tok, tmp_path / f"{fmt}.gguf", fmt).stat().st_size for fmt in FORMATS}
    assert sizes["F32"] > sizes["F16"] > sizes["Q8_0"] > sizes["Q4_0"]
    types = tensor_types(model, "Q8_0")
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["blk.0.attn_norm.weight"] == "F32"
    assert types["blk.0.ffn_down.weight"] == "F32"                   # rows of 48: not whole blocks of 32
    assert "output.weight" not in types                              # tied to token_embd, as llama.cpp reads it
    reader = GGUFReader(str(tmp_path / "Q8_0.gguf"))
    stored = {t.name: t for t in reader.tensors}
    assert {n: stored[n].tensor_type.name for n in types} == types
    q = model.state_dict()["model.layers.0.self_attn.q_proj.weight"]
    expected = dequantize_q8_0(quantize_q8_0(permute(q, 4))).reshape(q.shape)  # rows interleaved per head
    got = dequantize_q8_0(torch.from_numpy(stored["blk.0.attn_q.weight"].data.copy()).reshape(-1, 34))
    assert torch.equal(got.reshape(q.shape), expected)
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "llama"


def test_quantized_files_load_and_stay_close(tok, tmp_path):
    model = _model(tok)
    ids = tok("the cat sat on the mat", return_tensors="pt").input_ids
    with torch.no_grad():
        ref = model(ids).logits
        errors = {fmt: (load_gguf(write_gguf(model, tok, tmp_path / f"{fmt}.gguf", fmt))[0](ids).logits - ref).abs().max().item()
                  for fmt in ("F16", "Q8_0", "Q4_0")}
    assert 0 < errors["F16"] < errors["Q8_0"] < errors["Q4_0"] < 1.0


def test_bad_requests_are_refused(tok, tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        write_gguf(_model(tok), tok, tmp_path / "x.gguf", "Q3_K")


@pytest.mark.slow
def test_llama_cpp_s_converter_writes_the_same_file(tmp_path):
    """llama.cpp's convert_hf_to_gguf.py and write_gguf on the same model, in Q8_0: every tensor identical
    (name, type, shape, bytes: so the names, the Q/K permutation and the quantization agree), and
    every metadata value they share equal."""
    from ftlib.engine.gguf_export import CONVERTER, compare_gguf, convert_with_llama_cpp
    from ftlib.engine.models import TinyConfig, tiny_llama, tokenizer_from
    from ftlib.products.registry import resolve_model_path
    if not CONVERTER.exists():
        pytest.skip(f"{CONVERTER} is missing: ./run.sh setup unpacks llama.cpp's converter (llama-cpp-python's source)")
    tok = tokenizer_from(resolve_model_path("smollm2-135m"))     # a tokenizer the converter knows (SmolLM2's)
    torch.manual_seed(0)
    model = tiny_llama(TinyConfig(vocab_size=len(tok), hidden_size=64, n_layers=2, n_heads=4, n_kv_heads=2,
                                  intermediate_size=128, max_seq_len=256), pad_token_id=tok.pad_token_id,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model.save_pretrained(tmp_path / "hf")
    tok.save_pretrained(tmp_path / "hf")
    for fmt, outtype in (("Q8_0", "q8_0"),):
        ours = write_gguf(model, tok, tmp_path / f"ours-{fmt}.gguf", fmt, name="Hf", pre="smollm")
        diff = compare_gguf(ours, convert_with_llama_cpp(tmp_path / "hf", tmp_path / f"theirs-{fmt}.gguf", outtype))
        assert diff["tensors"] == [] and diff["values"] == [], diff
        assert set(diff["only_second"]) <= {"general.size_label", "general.type"}, diff
