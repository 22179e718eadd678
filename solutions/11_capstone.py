"""Chapter 11 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in."""

# %% 11.leaked_lines
def my_leaked_lines(train_lines, test_rows):
    """1-based numbers of the training lines (Alpaca JSON) whose prompt is also a test row's prompt."""
    ### BEGIN SOLUTION
    import json

    from ftlib.data import normalize_prompt

    def prompt(row):                  # what the model is asked: the instruction, then the input if any
        return normalize_prompt(row["instruction"] + ("\n\n" + row["input"] if row.get("input") else ""))
    held = {prompt(r) for r in test_rows}
    leaked = []
    for number, line in enumerate(train_lines, start=1):
        try:
            if prompt(json.loads(line)) in held:
                leaked.append(number)
        except (ValueError, KeyError, TypeError):      # not JSON, a missing field, a field of the wrong type
            continue
    return leaked
    ### END SOLUTION

# %% 11.from_llama_factory
from ftlib.course.exercises.ch11_capstone import LLAMA_FACTORY

for key, value in LLAMA_FACTORY.items():
    print(f"{key}: {value}")
# my_config: the same job as this course's config, a dict of sections as the YAML file would load
### BEGIN SOLUTION
my_config = {
    "model": {"name": "smollm2-135m"},
    "data": {"train": {"path": "data/train.jsonl", "format": "alpaca"}, "validation": 0.1, "max_length": 128},
    "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.05, "target_modules": "all-linear"},
    "train": {"steps": 60, "batch_size": 4, "grad_accum": 2, "lr": 2.0e-4, "schedule": "linear", "warmup": 0.05,
              "seed": 7},
    "output": {"dir": "runs/from_llama_factory"},
}
### END SOLUTION
