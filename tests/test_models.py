import time

import pytest
import torch

from ftlib.engine.models import (TINY_CONFIGS, count_parameters, generate, smollm2_dir, smollm2_gguf_path,
                                 tiny_llama)
from ftlib.products.registry import SMOLLM2, load_model, resolve_model_path


@pytest.fixture(scope="module")
def smollm2():
    return load_model(SMOLLM2)


def test_gguf_ships_in_the_wheel():
    path = smollm2_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 90e6


def test_smollm2_loads_offline_as_a_dense_llama(smollm2):
    model, tokenizer = smollm2
    assert type(model).__name__ == "LlamaForCausalLM"
    assert count_parameters(model) == 134_515_008
    assert next(model.parameters()).dtype == torch.float32
    assert tokenizer.model_max_length == model.config.max_position_embeddings  # not 1e30
    assert (smollm2_dir() / "model.safetensors").stat().st_size > 500e6


def test_cached_smollm2_reloads_fast_and_identically(smollm2):
    model, tokenizer = smollm2
    t0 = time.perf_counter()
    again, _ = load_model(SMOLLM2)
    assert time.perf_counter() - t0 < 10
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name


def test_smollm2_answers_and_can_be_trained(smollm2):
    model, tokenizer = smollm2
    answer = generate(model, tokenizer, "What is 2 + 2? Reply with the number only.", max_new_tokens=8)
    assert "4" in answer
    # dequantized, not "purely quantized": gradients flow
    batch = tokenizer("The cat sat on the mat.", return_tensors="pt")
    model.train()
    model(**batch, labels=batch["input_ids"]).loss.backward()
    model.eval()
    assert model.model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_tiny_llama_parameter_count_by_hand():
    for cfg in TINY_CONFIGS.values():
        model = tiny_llama(cfg)
        head_dim = cfg.hidden_size // cfg.n_heads
        attention = 2 * cfg.hidden_size * cfg.hidden_size + 2 * cfg.hidden_size * cfg.n_kv_heads * head_dim
        mlp = 3 * cfg.hidden_size * cfg.intermediate_size
        norms = 2 * cfg.hidden_size
        by_hand = cfg.vocab_size * cfg.hidden_size + cfg.n_layers * (attention + mlp + norms) + cfg.hidden_size
        assert count_parameters(model) == model.num_parameters() == by_hand
        assert model.config.tie_word_embeddings


def test_names_paths_and_hub_ids(tmp_path):
    assert resolve_model_path("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    with pytest.raises(Exception):   # offline: a hub id that is not cached fails fast, no download
        load_model("ftcourse-no-such-org/no-such-model")
