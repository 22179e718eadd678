"""Chapter 07 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in.

The checker cell after each exercise (tagged `checker`; import check once, in the first one):
    from ftlib.course.exercises import check

    check("07.dpo_loss", my_dpo_loss);
    check("07.unmasked_prompt", my_bad_rows, sample=label_sample_rows);
"""

# %% 07.dpo_loss
import torch
import torch.nn.functional as F


def my_dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    """Mean DPO loss over a batch of sequence log-probs, each (B,) -> a scalar tensor.

    margin = β·[(log π_c - log π_ref,c) - (log π_r - log π_ref,r)]; loss = mean over pairs of -log σ(margin).
    """
    ### BEGIN SOLUTION
    chosen_logratio = policy_chosen - ref_chosen           # how much more the policy likes it than π_ref does
    rejected_logratio = policy_rejected - ref_rejected
    return -F.logsigmoid(beta * (chosen_logratio - rejected_logratio)).mean()
    ### END SOLUTION

# %% 07.unmasked_prompt
from ftlib.course.exercises.ch07_dpo import label_sample

label_sample_rows = label_sample(SEED)       # prompt + answer rows with the labels a collator made
print(len(label_sample_rows), "rows; the first, as (token, label):",
      list(zip(label_sample_rows[0]["tokens"], label_sample_rows[0]["labels"])))
# tokens = the prompt's words, then the answer's: the answer starts at index len(row["prompt"].split()).
# my_bad_rows: the set of ids of the rows whose labelled positions (label != -100) are not exactly the answer's
### BEGIN SOLUTION
my_bad_rows = {r["id"] for r in label_sample_rows
               if [i for i, label in enumerate(r["labels"]) if label != -100]
               != list(range(len(r["prompt"].split()), len(r["tokens"])))}
### END SOLUTION
