"""Chapter 05 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in.

The checker cell after each exercise (tagged `checker`; import check once, in the first one):
    from ftlib.course.exercises import check

    check("05.label_mask", my_label_mask);
    check("05.sharegpt_to_messages", my_sharegpt_to_messages);
    check("05.find_leak", my_leaks, train=leak_train, test=leak_test);
"""

# %% 05.label_mask
def my_label_mask(input_ids, assistant_mask):
    """Labels for one example: the token id where assistant_mask is 1, -100 everywhere else."""
    ### BEGIN SOLUTION
    return [t if m else -100 for t, m in zip(input_ids, assistant_mask)]
    ### END SOLUTION

# %% 05.sharegpt_to_messages
def my_sharegpt_to_messages(row):
    """A ShareGPT row {"conversations": [{"from", "value"}]} -> messages [{"role", "content"}]."""
    ### BEGIN SOLUTION
    roles = {"system": "system", "human": "user", "gpt": "assistant"}
    return [{"role": roles[turn["from"]], "content": turn["value"]} for turn in row["conversations"]]
    ### END SOLUTION

# %% 05.find_leak
from ftlib.course.exercises.ch05_instruction_tuning import leaky_split

leak_train, leak_test = leaky_split(SEED)       # 300 training rows and 60 test rows, some of them leaked
print(len(leak_train), "train rows,", len(leak_test), "test rows; one of them:", leak_test[0])
# my_leaks: the set of ids of the test rows whose item (not just whose wording) also occurs in leak_train
### BEGIN SOLUTION
# an item is (family, meta["key"]): a reworded prompt about the same item leaks as much as a copy
my_leaks = {r["id"] for r in leak_test
            if (r["family"], r["meta"]["key"]) in {(t["family"], t["meta"]["key"]) for t in leak_train}}
### END SOLUTION
