"""Chapter 04 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in."""

# %% 04.quantize_block
exercise_block = [0.021, -0.013, 0.002, -0.035, 0.009, 0.030, -0.001, 0.017]
print("levels:", [round(v, 4) for v in nf4_levels().tolist()])
# my_codes: the 8 NF4 codes (ints 0..15) of exercise_block
### BEGIN SOLUTION
# divide by the block's absmax (0.035), then take the index of the nearest of the 16 levels
my_codes = (torch.tensor(exercise_block)[:, None] / max(abs(v) for v in exercise_block)
            - nf4_levels()[None, :]).abs().argmin(dim=1).tolist()
### END SOLUTION

# %% 04.bits_per_param
# my_bits: bits per weight with blocks of 128 weights and double quantization in blocks of 256 absmax values
### BEGIN SOLUTION
# 4-bit code + one 8-bit absmax per 128 weights + one fp32 second-level constant per 256 absmax values
my_bits = 4 + 8 / 128 + 32 / (128 * 256)
### END SOLUTION

# %% 04.qlora_weights_gb
llama2_13b = ModelShape(vocab_size=32000, hidden_size=5120, n_layers=40, n_heads=40, n_kv_heads=40,
                        intermediate_size=13824, tie_embeddings=False)
# my_gb: GB (1e9 bytes) of its QLoRA weights: linear layers at 4.127 bits, everything else bf16
### BEGIN SOLUTION
linear_bytes = llama2_13b.linear_params * 4.127 / 8                           # NF4 + double quantization
other_bytes = (llama2_13b.n_params - llama2_13b.linear_params) * 2              # embeddings, head, norms: bf16
my_gb = (linear_bytes + other_bytes) / 1e9
### END SOLUTION

# %% 04.quantization_study [markdown]
# **Your answer to 5.4** (graded by hand, 2 points)
#
# ### BEGIN SOLUTION
# Rubric for the grader:
# - 1 point: with `DOUBLE_QUANT False` the weights take more memory (the absmax constants in 32 bits:
#   4 + 32/64 = 4.5 bits per weight instead of about 4.127) and the estimator predicts the change;
#   with `GRADIENT_CHECKPOINTING True` the activation memory falls and each step takes longer (the
#   forward pass runs again during the backward pass); the answer quotes the printed measurements
#   and the estimator's numbers side by side, and says where they disagree.
# - 1 point: the MLP-only error study is compared with the attention run on the same measure, and
#   the answer notices that the MLP matrices hold most of the parameters, so a fair comparison looks
#   at the error per quantized parameter (or per layer) as well as in total; the conclusion follows
#   from the learner's own printed numbers.
# ### END SOLUTION
