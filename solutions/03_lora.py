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
