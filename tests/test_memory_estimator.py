"""The chapter-04 memory estimator: exact parameter counts against real models, the 7B table."""
import pytest
import torch

from ftlib.cores.memory import LLAMA2_7B, ModelShape, activation_bytes, lora_params, training_memory


def tiny_config(tie=True):
    from transformers import LlamaConfig
    return LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tie)


@pytest.mark.parametrize("tie", [True, False])
def test_parameter_counts_match_a_real_llama(tie):
    from transformers import LlamaForCausalLM
    from ftlib.engine.models import count_parameters
    config = tiny_config(tie)
    shape = ModelShape.from_config(config)
    model = LlamaForCausalLM(config)
    assert shape.n_params == count_parameters(model)
    linear = sum(m.weight.numel() for n, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and "lm_head" not in n)
    assert shape.linear_params == linear


def test_lora_params_match_peft_all_linear():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM
    from ftlib.engine.models import count_parameters
    config = tiny_config()
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, target_modules="all-linear"))
    assert lora_params(ModelShape.from_config(config), r=4) == count_parameters(model, trainable_only=True)


def test_seven_billion_table():
    assert LLAMA2_7B.n_params == 6_738_415_616                      # Llama-2-7B's published count
    full = training_memory(LLAMA2_7B, "full", weight_bytes=2)
    assert full["weights"] / 1e9 == pytest.approx(13.5, abs=0.05)   # "about 14 GB" in fp16
    assert (full["weights"] + full["gradients"] + full["optimizer"]) / LLAMA2_7B.n_params == 16
    qlora = training_memory(LLAMA2_7B, "qlora")
    assert qlora["weights"] / 2**30 == pytest.approx(3.6, abs=0.05)  # about 3.6 GiB
    lora = training_memory(LLAMA2_7B, "lora")
    assert qlora["total"] < lora["total"] < full["total"]
    assert qlora["adapters"] == lora["adapters"] > 0 and full["adapters"] == 0


def test_activations_grow_with_tokens_and_shrink_with_checkpointing():
    a = activation_bytes(LLAMA2_7B, 1, 512)
    assert activation_bytes(LLAMA2_7B, 2, 512) == 2 * a
    assert activation_bytes(LLAMA2_7B, 1, 512, gradient_checkpointing=True) < a / 5
    with pytest.raises(ValueError):
        training_memory(LLAMA2_7B, "prefix")
