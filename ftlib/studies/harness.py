"""The course's held-out tasks as a local lm-evaluation-harness task: no hub, same numbers as ours.

lm-evaluation-harness (``lm_eval``) is what practitioners run to evaluate a checkpoint. It finds
tasks in YAML files; a local task reads a JSONL file with ``dataset_path: json``. This module
writes one task per family (``course_<family>``, all tagged ``course_tasks``) over
``data/tasks_test.jsonl``, with a small ``course_utils.py`` beside the YAML that keeps each
family's rows and scores an answer with the course's own verifier:

    folder = write_tasks("runs/lm_eval_tasks", tokenizer)
    results = run_lm_eval(model, tokenizer, folder, ["course_fact_lookup"], limit=50)

or, from a shell, for any checkpoint directory or hub id::

    lm_eval --model hf --model_args pretrained=DIR --include_path runs/lm_eval_tasks \\
            --tasks course_tasks --apply_chat_template --batch_size 1

Settings that make lm-eval's numbers equal :func:`ftlib.metrics.exact_match.exact_match`'s: the chat
template applied to the prompt, greedy decoding, the same new-token budget per family
(:func:`ftlib.metrics.exact_match.answer_budget`), generation stopped at the end-of-turn token, and the
same items.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ftlib.data import DATA_DIR, FAMILIES
from ftlib.metrics.exact_match import answer_budget

TAG = "course_tasks"
METRIC = "verified"

UTILS = '''"""Written by ftlib.studies.harness: the course's verifiers, called by lm-evaluation-harness."""
from ftlib.data import verify

FAMILIES = {families!r}


def _only(family):
    def docs(dataset):
        return dataset.filter(lambda doc: doc["family"] == family)
    return docs


for _family in FAMILIES:                       # docs_<family>: that family's rows
    globals()["docs_" + _family] = _only(_family)


def process_results(doc, results):
    """lm-eval hands over the row (a dataset row fills absent meta keys with None) and the answer."""
    row = dict(doc, meta={{k: v for k, v in (doc.get("meta") or {{}}).items() if v is not None}})
    return {{"{metric}": float(bool(verify(row, results[0])))}}
'''

TEMPLATE = """task: course_{family}
tag: {tag}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
process_docs: !function course_utils.docs_{family}
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
target_delimiter: ""
generation_kwargs:
  until: [{stop!r}]
  max_gen_toks: {budget}
  do_sample: false
process_results: !function course_utils.process_results
metric_list:
  - metric: {metric}
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def write_tasks(out_dir: str | Path, tokenizer, families: Sequence[str] | None = None,
                data_file: str | Path = DATA_DIR / "tasks_test.jsonl", stop: str = "<|im_end|>") -> Path:
    """Write ``course_<family>.yaml`` for each family and ``course_utils.py`` into ``out_dir``.

    The token budgets come from ``tokenizer`` (they are counted in its tokens), so write the tasks
    for the tokenizer of the model you evaluate. Returns ``out_dir`` (pass it as ``include_path``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    families = list(families or FAMILIES)
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"write_tasks: unknown families {unknown}; choose from {sorted(FAMILIES)}")
    (out / "course_utils.py").write_text(UTILS.format(families=families, metric=METRIC))
    for family in families:
        (out / f"course_{family}.yaml").write_text(TEMPLATE.format(
            family=family, tag=TAG, data=Path(data_file).resolve(), stop=stop,
            budget=answer_budget(tokenizer, family), metric=METRIC))
    return out


def run_lm_eval(model, tokenizer, include_path: str | Path, tasks: Sequence[str], *,
                limit: int | None = None, batch_size: int = 1) -> dict:
    """Run lm-eval on an already loaded ``model`` through its Python API (``HFLM`` wraps the model
    object, so nothing is downloaded). Returns ``{task: {"score": mean, "n": items, "answers":
    [...], "correct": [...], "ids": [...]}}`` from lm-eval's per-sample logs, in data order."""
    import logging

    import datasets
    import lm_eval
    import lm_eval.api.task
    import lm_eval.models.huggingface as hf
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from tqdm import tqdm

    for name in ("lm_eval", "lm-eval"):                       # its INFO lines are not the lesson
        logging.getLogger(name).setLevel(logging.ERROR)
    # no progress bars in a notebook's saved output: lm-eval's own, and datasets' while it loads the JSONL
    hf.tqdm = lm_eval.api.task.tqdm = lambda *args, **kwargs: tqdm(*args, **{**kwargs, "disable": True})
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    # add_bos_token=False: the chat template already holds every special token the model was trained
    # with; lm-eval would otherwise let the tokenizer prepend its BOS, which the course never does.
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=str(model.device),
              add_bos_token=False)
    try:
        out = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=TaskManager(include_path=str(include_path)),
                                      limit=limit, apply_chat_template=True, log_samples=True,
                                      bootstrap_iters=0, verbosity="ERROR")
    finally:
        hf.tqdm = lm_eval.api.task.tqdm = tqdm
        if bars:
            datasets.enable_progress_bars()
    results = {}
    for task, samples in out["samples"].items():
        samples = sorted(samples, key=lambda s: s["doc_id"])
        results[task] = {"score": out["results"][task][f"{METRIC},none"], "n": len(samples),
                         "ids": [s["doc"]["id"] for s in samples],
                         "answers": [s["filtered_resps"][0] for s in samples],
                         "correct": [bool(s[METRIC]) for s in samples]}
    return results
