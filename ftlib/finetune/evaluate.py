"""The capstone's before/after: the same held-out items scored on the start model and on the result.

- answers (``eval.verifier`` exact or family): greedy answers, right or wrong per item, accuracy with
  its 95% Wilson interval, and the paired difference with McNemar's test (chapter 08);
- pairs (DPO): does the model give the chosen answer a higher log-probability than the rejected one,
  per pair, compared the same way;
- the reference answers' perplexity (``eval.perplexity``), with a paired bootstrap interval of the
  change in mean NLL per token.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ftlib.cores.stats import accuracy_of, compare, paired_bootstrap, paired_difference
from ftlib.finetune.rows import Example


@dataclass
class Scores:
    """One model on the eval items."""
    correct: list[bool] = field(default_factory=list)     # per item (answers or pairs); empty with verifier none
    answers: list[str] = field(default_factory=list)
    nll_per_token: list[float] = field(default_factory=list)   # per item; empty without perplexity


def render(tokenizer, template: str, example: Example) -> str:
    return tokenizer.apply_chat_template(example.messages, chat_template=template, tokenize=False,
                                         add_generation_prompt=True)


def answer_budget(tokenizer, examples: list[Example], spare: int = 8) -> int:
    """New tokens to generate: the longest reference answer and ``spare`` more (room to be wrong)."""
    return max(len(tokenizer(e.answer, add_special_tokens=False)["input_ids"]) for e in examples) + spare


def score(model, tokenizer, template: str, examples: list[Example], *, verifier: str, pairs: bool,
          perplexity: bool, budget: int) -> Scores:
    """Score ``model`` on ``examples`` (see the module docstring)."""
    from ftlib.data import verify
    from ftlib.data.verifiers import text_matches
    from ftlib.metrics.exact_match import greedy_answers
    from ftlib.metrics.perplexity import answer_perplexity

    out = Scores()
    if pairs:
        out.correct = pair_preferences(model, tokenizer, template, examples)
    elif verifier != "none":
        out.answers = greedy_answers(model, tokenizer, [render(tokenizer, template, e) for e in examples], budget)
        check = (lambda e, a: bool(verify(e.row, a))) if verifier == "family" else (lambda e, a: text_matches(e.answer, a))
        out.correct = [check(e, a) for e, a in zip(examples, out.answers)]
    if perplexity:
        rows = [{"prompt": render(tokenizer, template, e), "answer": e.answer} for e in examples]
        ppl = answer_perplexity(model, tokenizer, rows, render=lambda text: text)
        out.nll_per_token = [s / t for s, t in zip(ppl.nll, ppl.tokens)]
    return out


def pair_preferences(model, tokenizer, template: str, examples: list[Example], batch_size: int = 16) -> list[bool]:
    """Per pair: log π(chosen) > log π(rejected), the answers scored after the prompt (chapter 07's
    :func:`~ftlib.engine.dpo.pair_batch`, single-turn prompts)."""
    import torch

    from ftlib.engine.dpo import pair_batch, pair_logprobs
    saved, tokenizer.chat_template = tokenizer.chat_template, template
    rows = [{"prompt": e.messages[-1]["content"], "chosen": e.answer, "rejected": e.rejected} for e in examples]
    out = []
    try:
        with torch.no_grad():
            for i in range(0, len(rows), batch_size):
                chosen, rejected = pair_logprobs(model.eval(), pair_batch(tokenizer, rows[i:i + batch_size]))
                out += (chosen > rejected).tolist()
    finally:
        tokenizer.chat_template = saved
    return out


def comparison(before: Scores, after: Scores, *, pairs: bool) -> dict:
    """The before/after table as numbers: accuracies, paired difference, McNemar; NLL change."""
    result = {"metric": "pairs ranked right (log-probability)" if pairs else "answers right"}
    if before.correct:
        d = paired_difference(before.correct, after.correct)
        result.update(before=accuracy_of(before.correct).as_dict(), after=accuracy_of(after.correct).as_dict(),
                      difference={"value": d.value, "ci_low": d.low, "ci_high": d.high, "p_value": d.p_value,
                                  "only_before": d.only_a, "only_after": d.only_b},
                      sentence=compare(before.correct, after.correct, "start", "fine-tuned"))
    if before.nll_per_token:
        mean, low, high = paired_bootstrap(before.nll_per_token, after.nll_per_token)
        result["nll_per_token"] = {"before": sum(before.nll_per_token) / len(before.nll_per_token),
                                   "after": sum(after.nll_per_token) / len(after.nll_per_token),
                                   "change": mean, "ci_low": low, "ci_high": high}
    return result


def table(result: dict, n: int) -> str:
    """The comparison as a Markdown table (what report.md and the notebook show)."""
    rows = ["| | start | fine-tuned | paired difference (95% CI) | McNemar p |", "|---|---|---|---|---|"]
    if "before" in result:
        b, a, d = result["before"], result["after"], result["difference"]
        acc = lambda x: f"{100 * x['accuracy']:.0f}% ({x['k']}/{x['n']}; {100 * x['ci_low']:.0f}–{100 * x['ci_high']:.0f}%)"  # noqa: E731
        rows.append(f"| {result['metric']} | {acc(b)} | {acc(a)} | {100 * d['value']:+.0f} points "
                    f"({100 * d['ci_low']:+.0f} to {100 * d['ci_high']:+.0f}) | {d['p_value']:.2g} |")
    if "nll_per_token" in result:
        p = result["nll_per_token"]
        rows.append(f"| reference answers, NLL per token (nats) | {p['before']:.3f} | {p['after']:.3f} | "
                    f"{p['change']:+.3f} ({p['ci_low']:+.3f} to {p['ci_high']:+.3f}), bootstrap | |")
    return "\n".join(rows) + f"\n\n{n} held-out items, each scored on both models."
