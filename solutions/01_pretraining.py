"""Chapter 01 · solutions (instructors). Learners see these cells with the solution stubbed out;
`python -m ftlib.course solutions` writes the notebooks with them filled in."""

# %% 01.warmup_cosine
def warmup_cosine(step, steps, lr, warmup_steps, min_lr_ratio):
    ### BEGIN SOLUTION
    if step < warmup_steps:                       # a straight line: lr / warmup_steps at step 0, lr at warmup_steps - 1
        return lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, steps - warmup_steps))   # 0 -> 1 over the decay
    floor = min_lr_ratio * lr
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))      # half a cosine, lr -> floor
    ### END SOLUTION

# %% 01.repeated_line_ratio
def my_repeated_line_ratio(text):
    ### BEGIN SOLUTION
    lines = [line.strip() for line in text.splitlines() if line.strip()]   # stripped, blank lines dropped
    return (len(lines) - len(set(lines))) / max(1, len(lines))              # repeats of an earlier line / lines
    ### END SOLUTION
