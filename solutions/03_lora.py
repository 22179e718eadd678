"""Chapter 03 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in."""

# %% 03.delta_weight
def my_delta_weight(A, B, alpha, r):
    """The full-size update ΔW (out × in) that merge adds to W0; A is (r, in), B is (out, r)."""
    ### BEGIN SOLUTION
    return (alpha / r) * B @ A
    ### END SOLUTION

# %% 03.trainable_count
### BEGIN SOLUTION
# every wrapped layer trains A (r x in) and B (out x r): r * (in + out) numbers
# q_proj 576 -> 576: 4 * (576 + 576) = 4608; v_proj 576 -> 192: 4 * (576 + 192) = 3072; 30 layers
my_count = 30 * (4 * (576 + 576) + 4 * (576 + 192))
### END SOLUTION

# %% 03.format_vs_skill [markdown]
# **Your answer to 6.3** (graded by hand, 2 points)
#
# ### BEGIN SOLUTION
# Rubric for the grader:
# - 1 point: both reruns are reported with each accuracy's n and 95% interval, and the runs are
#   compared on the same items with the paired test the notebook prints (McNemar), not with bare
#   percentages; a difference the test cannot see is called "not distinguishable at this n".
# - 1 point: the reading separates format from skill: a format task (putting an answer the base can
#   already compute into the asked shape) moves within the budget, while a skill the base lacks
#   (counting words, multi-step arithmetic) stays near its start; the explanation is that a small
#   low-rank update can re-route behaviour the model already has but cannot add much new ability.
#   Accept the opposite conclusion only when the learner's own printed numbers and tests support it.
# ### END SOLUTION

# %% 03.alpha_as_lr [markdown]
# **Your answer to 6.4** (graded by hand, 2 points)
#
# ### BEGIN SOLUTION
# Rubric for the grader:
# - 1 point: the new run (alpha x10 at LR_FULL) is compared with both LoRA runs of section 3.5 on
#   the loss curve and with the paired comparison of exact match; the answer says which it resembles,
#   citing the printed numbers. Expected: closer to LoRA at LR_LORA (ten times LR_FULL) than at LR_FULL.
# - 1 point: why not exactly: Adam moves every trained number by about the learning rate per step
#   whatever the gradient's scale, so with alpha x10 B still moves by about LR_FULL per step and
#   ΔW = (alpha/r)·B·A grows about ten times faster, as with a ten times larger learning rate; but a
#   larger learning rate also moves A ten times further, and alpha does not (A keeps its initial
#   scale), so ΔW differs beyond the first steps; Adam's step is only about lr (moment estimates,
#   epsilon), and weight decay scales with lr, not with alpha.
# ### END SOLUTION
