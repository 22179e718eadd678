"""Chapter 10 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in."""

# %% 10.zero_bytes
def my_zero_bytes(n_params, n_ranks, stage):
    """Bytes per rank of weights, gradients and optimizer state for mixed-precision Adam under ZeRO `stage`."""
    ### BEGIN SOLUTION
    per_param = {"params": 2, "grads": 2, "optimizer": 12}      # bf16 weights and gradients; fp32 master + 2 moments
    first_sharded = {"optimizer": 1, "grads": 2, "params": 3}   # the stage from which each state is sharded
    return {kind: n_params * nbytes / (n_ranks if stage >= first_sharded[kind] else 1)
            for kind, nbytes in per_param.items()}
    ### END SOLUTION

# %% 10.collectives
from ftlib.course.exercises.ch10_scaling_out import COLLECTIVE_STEPS, COLLECTIVES

print("steps:", COLLECTIVE_STEPS)
print("collectives:", COLLECTIVES)
# my_collectives: a dict from each step to the name of its collective
### BEGIN SOLUTION
my_collectives = {
    "ddp gradients": "all-reduce",                       # everyone needs the whole averaged gradient
    "zero2 gradients": "reduce-scatter",                 # each rank keeps the summed gradient of its shard
    "zero3 weights before a layer runs": "all-gather",   # the layer's shards, gathered for a moment
    "zero3 gradients": "reduce-scatter",
    "zero1 updated weights": "all-gather",               # each rank updated its shard; all need every weight
}
### END SOLUTION
