"""ftlib.cores.lora against PEFT on a tiny Llama: same A and B in, same logits and gradients out.

Tolerances (fp32, CPU): logits and gradients agree to atol 1e-5 / rtol 1e-5; merge -> unmerge
restores weights to atol 1e-6. Every equality is preceded by a check that the thing compared
actually differs from the trivial answer, so the equality cannot pass by accident.
"""
import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model

from ftlib.cores.lora import (ALL_LINEAR, ATTENTION, LoRALinear, copy_lora_to_peft, count_trainable,
                              inject_adapters, inject_lora, linear_merge, lora_layers, lora_parameter_count,
                              merge_and_unload)
from ftlib.engine.models import TinyConfig, tiny_llama

ATOL = RTOL = 1e-5
CFG = TinyConfig(vocab_size=96, hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
                 intermediate_size=48, max_seq_len=32)


@pytest.fixture
def base():
    torch.manual_seed(0)
    return tiny_llama(CFG).eval()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, CFG.vocab_size, (2, 12), generator=g)
    return {"input_ids": ids, "labels": ids.clone()}


def randomize_b(model, seed=2):
    """Give every lora_B a non-zero value (it starts at zero, which would make any test trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.weight.copy_(torch.randn(layer.lora_B.weight.shape, generator=g) * 0.1)


def peft_twin(base, targets, r, alpha):
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets)
    return get_peft_model(copy.deepcopy(base), cfg)


def test_zero_b_is_identity_and_nonzero_b_changes_output(base, batch):
    ref = base(input_ids=batch["input_ids"]).logits
    ours = inject_lora(copy.deepcopy(base), ATTENTION, r=4, alpha=8)
    torch.testing.assert_close(ours(input_ids=batch["input_ids"]).logits, ref, atol=0, rtol=0)
    randomize_b(ours)
    changed = ours(input_ids=batch["input_ids"]).logits
    assert (changed - ref).abs().max() > 1e-3


@pytest.mark.parametrize("targets", [["q_proj", "v_proj"], ALL_LINEAR])
def test_same_weights_same_logits_and_gradients_as_peft(base, batch, targets):
    ours = inject_lora(copy.deepcopy(base), targets, r=4, alpha=8)
    randomize_b(ours)
    theirs = peft_twin(base, targets, r=4, alpha=8)
    before = theirs(input_ids=batch["input_ids"]).logits
    ours_logits = ours(input_ids=batch["input_ids"]).logits
    assert (before - ours_logits).abs().max() > 1e-3          # different A and B: outputs differ
    assert copy_lora_to_peft(ours, theirs) == len(lora_layers(ours))

    out_ours, out_theirs = ours(**batch), theirs(**batch)
    torch.testing.assert_close(out_ours.logits, out_theirs.logits, atol=ATOL, rtol=RTOL)
    out_ours.loss.backward()
    out_theirs.loss.backward()
    for name, layer in lora_layers(ours).items():
        peft_layer = theirs.get_submodule("base_model.model." + name)
        for ab in ("lora_A", "lora_B"):
            g_ours = getattr(layer, ab).weight.grad
            g_theirs = getattr(peft_layer, ab)["default"].weight.grad
            assert g_ours.abs().max() > 0
            torch.testing.assert_close(g_ours, g_theirs, atol=ATOL, rtol=RTOL)
    # the frozen base got no gradient in ours
    assert all(p.grad is None for n, p in ours.named_parameters() if "lora_" not in n)


@pytest.mark.parametrize("targets", [list(ATTENTION), ALL_LINEAR])
@pytest.mark.parametrize("r", [1, 8])
def test_trainable_count_matches_peft(base, targets, r):
    ours = inject_lora(copy.deepcopy(base), targets, r=r, alpha=16)
    theirs = peft_twin(base, targets, r=r, alpha=16)
    assert count_trainable(ours) == theirs.get_nb_trainable_parameters()
    shapes = [tuple(m.base_layer.weight.shape) for m in lora_layers(ours).values()]
    assert count_trainable(ours)[0] == lora_parameter_count(shapes, r)
    n_expected = CFG.n_layers * (4 if targets != ALL_LINEAR else 7)   # lm_head is never a target
    assert len(shapes) == n_expected


def test_merge_unmerge_roundtrip_and_merged_logits(base, batch):
    model = inject_lora(copy.deepcopy(base), ALL_LINEAR, r=4, alpha=8)
    randomize_b(model)
    layer = model.model.layers[0].self_attn.q_proj
    w0 = layer.base_layer.weight.detach().clone()
    unmerged = model(input_ids=batch["input_ids"]).logits.detach()
    for l in lora_layers(model).values():
        l.merge()
    assert (layer.base_layer.weight - w0).abs().max() > 1e-4          # merging changed W
    merged = model(input_ids=batch["input_ids"]).logits.detach()
    torch.testing.assert_close(merged, unmerged, atol=ATOL, rtol=RTOL)
    for l in lora_layers(model).values():
        l.unmerge()
    torch.testing.assert_close(layer.base_layer.weight, w0, atol=1e-6, rtol=0)
    torch.testing.assert_close(model(input_ids=batch["input_ids"]).logits, unmerged, atol=ATOL, rtol=RTOL)


def test_merge_and_unload_matches_peft(base, batch):
    ours = inject_lora(copy.deepcopy(base), ["q_proj", "v_proj", "down_proj"], r=4, alpha=8)
    randomize_b(ours)
    theirs = peft_twin(base, ["q_proj", "v_proj", "down_proj"], r=4, alpha=8)
    copy_lora_to_peft(ours, theirs)
    ours = merge_and_unload(ours)
    theirs = theirs.merge_and_unload()
    assert not lora_layers(ours)
    assert type(ours.model.layers[0].self_attn.q_proj) is torch.nn.Linear
    assert (ours.model.layers[0].self_attn.q_proj.weight - base.model.layers[0].self_attn.q_proj.weight).abs().max() > 1e-4
    torch.testing.assert_close(ours.state_dict(), theirs.state_dict(), atol=1e-6, rtol=0)


def test_delta_weight_is_scaled_b_times_a():
    layer = LoRALinear(torch.nn.Linear(6, 5), r=2, alpha=6)
    torch.nn.init.normal_(layer.lora_B.weight)
    delta = layer.get_delta_weight()
    assert delta.shape == (5, 6) and layer.scaling == 3.0
    x = torch.randn(3, 6)
    torch.testing.assert_close(layer(x), layer.base_layer(x) + x @ delta.T, atol=ATOL, rtol=RTOL)
    assert torch.linalg.matrix_rank(delta) == 2


def test_bottleneck_adapter_starts_as_identity_and_trains_only_itself(base, batch):
    ref = base(input_ids=batch["input_ids"]).logits
    model = inject_adapters(copy.deepcopy(base), ("mlp",), bottleneck=4)
    torch.testing.assert_close(model(input_ids=batch["input_ids"]).logits, ref, atol=0, rtol=0)
    d = CFG.hidden_size
    assert count_trainable(model)[0] == CFG.n_layers * (d * 4 + 4 + 4 * d + d)
    model(**batch).loss.backward()
    ups = [m.up.weight.grad for m in model.modules() if hasattr(m, "up")]
    assert len(ups) == CFG.n_layers and all(g.abs().max() > 0 for g in ups)


def test_linear_merge():
    a, b = {"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 6.0])}
    torch.testing.assert_close(linear_merge([a, b], [0.5, 0.5])["w"], torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(linear_merge([a, b], [1.0, 0.0])["w"], a["w"])
    with pytest.raises(ValueError):
        linear_merge([a, b], [1.0])


def test_no_target_raises(base):
    with pytest.raises(ValueError, match="no nn.Linear"):
        inject_lora(copy.deepcopy(base), ["nonexistent"], r=2)


def test_prefix_from_text_equals_reading_the_text_first(base):
    """PEFT prefix tuning started by init_prefix_from_text is the base model with the text prepended."""
    from peft import PrefixTuningConfig, TaskType, get_peft_model

    from ftlib.cores.lora import init_prefix_from_text
    g = torch.Generator().manual_seed(3)
    text, x = torch.randint(3, CFG.vocab_size, (1, 5), generator=g), torch.randint(3, CFG.vocab_size, (2, 7), generator=g)
    want = base(input_ids=torch.cat([text.expand(2, -1), x], dim=1)).logits[:, 5:]
    prefixed = get_peft_model(copy.deepcopy(base), PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=5))
    random_start = prefixed(input_ids=x, attention_mask=torch.ones_like(x)).logits
    assert not torch.allclose(random_start, want, atol=1e-2)          # PEFT's random prefix: not the text
    assert not torch.allclose(base(input_ids=x).logits, want, atol=1e-2)  # and the text does change x's logits
    init_prefix_from_text(prefixed, text)
    got = prefixed(input_ids=x, attention_mask=torch.ones_like(x)).logits
    assert torch.allclose(got, want, atol=ATOL, rtol=RTOL)
    with pytest.raises(ValueError, match="virtual tokens"):
        init_prefix_from_text(prefixed, text[:, :3])
