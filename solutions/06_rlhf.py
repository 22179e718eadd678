"""Chapter 06 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in.

The checker cell after each exercise (tagged `checker`; import check once, in the first one):
    from ftlib.course.exercises import check

    check("06.gae", my_gae);
    check("06.kl_k3", my_k3);
    check("06.reward_hack", my_hacks, sample=hack_sample);
"""

# %% 06.gae
import torch


def my_gae(rewards, values, gamma, lam):
    """GAE over (B, T) per-token rewards and values -> (advantages, returns), both (B, T).

    δ_t = r_t + γ·V_{t+1} - V_t (V after the last token is 0); A_t = δ_t + γ·λ·A_{t+1}; returns = A + V.
    """
    ### BEGIN SOLUTION
    T = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    next_advantage, next_value = torch.zeros_like(rewards[:, 0]), torch.zeros_like(values[:, 0])
    for t in reversed(range(T)):                     # A_t needs A_{t+1}: walk from the last token back
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = delta + gamma * lam * next_advantage
        advantages[:, t], next_value = next_advantage, values[:, t]
    return advantages, advantages + values
    ### END SOLUTION

# %% 06.kl_k3
def my_k3(logprobs, ref_logprobs):
    """Per token, k3 = (r - 1) - log r with r = π_ref / π: estimates KL(π || π_ref) from tokens sampled from π."""
    ### BEGIN SOLUTION
    log_r = ref_logprobs - logprobs
    return (torch.exp(log_r) - 1) - log_r
    ### END SOLUTION

# %% 06.reward_hack
from statistics import median

from ftlib.data import verify
from ftlib.course.exercises.ch06_rlhf import reward_hack_sample

hack_sample = reward_hack_sample(SEED)         # completions of an over-optimised policy, with their rewards
print(len(hack_sample), "completions; each row has", sorted(hack_sample[0]))
# my_hacks: the set of ids of the rows the verifier rejects (verify(row["task"], row["completion"]) is False)
# whose reward is above the median reward of the rows the verifier accepts
### BEGIN SOLUTION
correct_median = median(r["reward"] for r in hack_sample if verify(r["task"], r["completion"]))
my_hacks = {r["id"] for r in hack_sample
            if not verify(r["task"], r["completion"]) and r["reward"] > correct_median}
### END SOLUTION
