"""ftlib.nf4 against bitsandbytes' CPU kernels: same levels, same 4-bit codes, same dequantized values."""
import pytest
import torch

bnbf = pytest.importorskip("bitsandbytes.functional")

from ftlib.nf4 import (BLOCKSIZE, NF4Linear, bits_per_parameter, dequantize_blockwise,  # noqa: E402
                       double_dequantize, double_quantize, fp4_levels, int4_levels, nf4_levels,
                       nf4_lora_model, pack_4bit, quantize_blockwise, quantize_dequantize,
                       unpack_4bit)

# QLoRA paper, appendix E (and bitsandbytes' hard-coded table), rounded to 4 decimals.
PAPER_NF4 = [-1.0, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0.0,
             0.0796, 0.1609, 0.2461, 0.3379, 0.4407, 0.5626, 0.7230, 1.0]
LEVELS = {"nf4": nf4_levels, "fp4": fp4_levels}


def test_nf4_levels_match_the_paper_and_bitsandbytes():
    levels = nf4_levels()
    assert levels.tolist() == sorted(levels.tolist()) and len(set(levels.tolist())) == 16
    assert levels[7] == 0.0                                        # an exact zero
    assert (levels < 0).sum() == 7 and (levels > 0).sum() == 8     # asymmetric halves
    assert torch.allclose(levels, torch.tensor(PAPER_NF4), atol=5e-5)
    # bitsandbytes stores the table rounded to fp32 from a printed list: agree to 1e-6
    assert torch.allclose(levels, bnbf.get_4bit_type("nf4", device="cpu"), atol=1e-6)
    assert torch.equal(fp4_levels(), bnbf.get_4bit_type("fp4", device="cpu"))
    assert int4_levels()[:15].diff().allclose(torch.full((14,), 1 / 7))


def test_pack_order_is_high_nibble_first():
    codes = torch.tensor([1, 2, 15, 0], dtype=torch.uint8)
    assert pack_4bit(codes).tolist() == [0x12, 0xF0]
    assert torch.equal(unpack_4bit(pack_4bit(codes)), codes)
    assert pack_4bit(codes).tolist() != pack_4bit(codes.flip(0)).tolist()


@pytest.mark.parametrize("kind", ["nf4", "fp4"])
@pytest.mark.parametrize("shape", [(128, 96), (33, 70)])   # the second needs a padded last block
def test_codes_and_values_match_bitsandbytes(kind, shape):
    torch.manual_seed(0)
    w = torch.randn(shape) * 0.02
    packed, state = bnbf.quantize_4bit(w, blocksize=BLOCKSIZE, quant_type=kind)
    codes, absmax = quantize_blockwise(w, LEVELS[kind]())
    n = w.numel()
    assert codes.unique().numel() >= 12                               # the test sees many codes
    assert torch.equal(codes.flatten()[:n], unpack_4bit(packed)[:n])  # identical 4-bit codes
    assert torch.equal(absmax, state.absmax)
    ours = dequantize_blockwise(codes, absmax, LEVELS[kind](), w.shape)
    theirs = bnbf.dequantize_4bit(packed, state)
    assert not torch.equal(ours, w)                                   # quantization changed w
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_nf4_beats_fp4_and_int4_on_normal_weights():
    torch.manual_seed(1)
    w = torch.randn(256, 256)
    err = {k: (quantize_dequantize(w, k) - w).pow(2).mean().item() for k in ("nf4", "fp4", "int4")}
    assert err["nf4"] < err["fp4"] and err["nf4"] < err["int4"], err
    assert err["nf4"] < 0.8 * err["int4"]


def test_double_quantization_bits_and_error():
    assert bits_per_parameter(4096 * 4096) == pytest.approx(4.127, abs=5e-4)
    assert bits_per_parameter(4096 * 4096, double_quant=False) == pytest.approx(4.5)
    torch.manual_seed(2)
    w = torch.randn(512, 128) * 0.02
    _, absmax = quantize_blockwise(w, nf4_levels())
    q, scale, offset = double_quantize(absmax)
    assert q.dtype == torch.int8 and q.numel() == 1024 and scale.numel() == 4
    back = double_dequantize(q, scale, offset, absmax.numel())
    assert not torch.equal(back, absmax)
    assert ((back - absmax).abs() / absmax).max() < 0.01             # < 1% per constant
    # bitsandbytes' double quantization (dynamic 8-bit code, block 256) lands as close
    _, state = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
    theirs = bnbf.dequantize_blockwise(state.absmax, state.state2) + state.offset
    assert ((theirs - absmax).abs() / absmax).max() < 0.02


def test_nf4_linear_matches_bitsandbytes_and_lora_on_top_changes_it():
    from ftlib.lora import LoRALinear
    torch.manual_seed(3)
    base = torch.nn.Linear(128, 64)
    layer = NF4Linear(base)
    x = torch.randn(5, 128)
    packed, state = bnbf.quantize_4bit(base.weight.detach(), blocksize=64, quant_type="nf4")
    expected = x @ bnbf.dequantize_4bit(packed, state).T + base.bias
    assert not torch.allclose(x @ base.weight.T + base.bias, expected, atol=1e-4)   # 4 bits changed it
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
    assert layer.packed.dtype == torch.uint8 and layer.packed.numel() == 128 * 64 // 2
    lora = LoRALinear(layer, r=4, alpha=8)
    torch.testing.assert_close(lora(x), expected, rtol=1e-5, atol=1e-5)      # B = 0 at the start
    with torch.no_grad():
        lora.lora_B.weight.normal_()
    assert not torch.allclose(lora(x), expected, atol=1e-3)
    dq = NF4Linear(base, double_quant=True)
    assert dq.absmax_q.dtype == torch.int8
    torch.testing.assert_close(dq.weight, layer.weight, rtol=0, atol=1e-3)


def test_nf4_lora_model_trains_only_lora():
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))
    nf4_lora_model(model, r=2, skip=())
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    x, y = torch.randn(32, 64), torch.randn(32, 8)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    before = model[0].base_layer.packed.clone()
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] and torch.equal(model[0].base_layer.packed, before)
