"""ftlib.metrics.exact_match: the statistics against scipy, greedy answers against one-by-one generation,
the answer budget against the data, teacher-forced exact match against a hand example."""
import pytest
import torch
from scipy.stats import binomtest

from ftlib.data import load_tasks
from ftlib.cores.stats import Accuracy, accuracy_of, compare, mcnemar, paired_bootstrap, wilson_interval
from ftlib.metrics.exact_match import answer_budget, exact_match, greedy_answers, teacher_forced_correct


@pytest.mark.parametrize("k,n", [(0, 30), (2, 30), (28, 30), (30, 30), (7, 9), (500, 1202)])
def test_wilson_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_wilson_interval_always_contains_the_proportion():
    # error bars are p - lo and hi - p: they must never be negative, also at 0/n and n/n
    for n in range(1, 400):
        for k in range(n + 1):
            lo, hi = wilson_interval(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0, (k, n)


def test_accuracy_string_carries_n_and_interval():
    acc = accuracy_of([True] * 28 + [False] * 2)
    assert (acc.k, acc.n) == (28, 30)
    assert str(acc) == "93% (28/30; 95% CI 79–98%)"
    assert Accuracy(0, 0).ci == (0.0, 1.0)


@pytest.mark.parametrize("only_a,only_b,both", [(4, 0, 10), (3, 9, 5), (0, 0, 7), (12, 2, 0)])
def test_mcnemar_is_the_exact_binomial_test_on_discordant_items(only_a, only_b, both):
    a = [1] * only_a + [0] * only_b + [1] * both
    b = [0] * only_a + [1] * only_b + [1] * both
    got = mcnemar(a, b)
    assert (got["only_a"], got["only_b"]) == (only_a, only_b)
    want = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    assert got["p_value"] == pytest.approx(want, abs=1e-12)


def test_mcnemar_refuses_unpaired_lists():
    with pytest.raises(ValueError, match="same items"):
        mcnemar([1, 0], [1])


def test_paired_bootstrap_interval_covers_the_difference_and_shrinks_with_n():
    a, b = [0, 1] * 20, [1, 1] * 20                       # b is right on 20 more of 40 items
    diff, lo, hi = paired_bootstrap(a, b)
    assert diff == 0.5 and lo < 0.5 < hi
    _, lo4, hi4 = paired_bootstrap(a * 4, b * 4)
    assert hi4 - lo4 < hi - lo


def test_compare_says_when_a_difference_is_not_real():
    a = [True] * 27 + [False] * 3
    b = [True] * 29 + [False] * 1                         # 2 more right: not significant at n = 30
    assert "not distinguishable at this n" in compare(a, b, "base", "tuned")
    big = compare([False] * 30, [True] * 30, "base", "tuned")
    assert "tuned is better" in big and "0% (0/30" in big


class CharTokenizer:
    """A tokenizer with one token per character: 'answer budget' is the longest answer's length."""
    name_or_path, padding_side = "chars", "right"

    def __len__(self):
        return 256

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[ord(c) % 256 for c in t] for t in texts]}


def test_answer_budget_fits_the_longest_gold_answer_of_the_family():
    longest = max(len(r["answer"]) for s in ("train", "val", "test") for r in load_tasks(s, ["format_list"]))
    assert answer_budget(CharTokenizer(), "format_list") == longest + 2
    assert answer_budget(CharTokenizer(), "arithmetic") < answer_budget(CharTokenizer(), "format_list")


def test_teacher_forced_correct_on_a_hand_example():
    V = 5
    labels = torch.tensor([[-100, -100, 3, 4], [-100, -100, 3, 4]])
    logits = torch.zeros(2, 4, V)
    logits[:, 1, 3] = 1.0                                 # position 1 predicts token 3: right for both
    logits[0, 2, 4] = 1.0                                 # row 0 then predicts 4: right
    logits[1, 2, 2] = 1.0                                 # row 1 predicts 2: wrong
    logits[:, 0, 1] = 1.0                                 # prompt positions do not count
    assert teacher_forced_correct(logits, labels) == [True, False]


def test_greedy_answers_batched_with_left_padding_equal_one_by_one():
    from ftlib.engine.models import TinyConfig, tiny_llama
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {c: i for i, c in enumerate(["<pad>", "<s>", "</s>"] + list("abcdefghijklmnopqrstuvwxyz "))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>")
    torch.manual_seed(0)
    model = tiny_llama(TinyConfig(vocab_size=len(vocab), hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
                                  intermediate_size=48, max_seq_len=64)).eval()
    prompts = ["abc", "hello there", "z", "the cat sat"]           # different lengths: padding matters
    batched = greedy_answers(model, tokenizer, prompts, max_new_tokens=6, batch_size=4)
    alone = [greedy_answers(model, tokenizer, [p], max_new_tokens=6)[0] for p in prompts]
    assert batched == alone
    assert len(set(batched)) > 1                                     # not trivially equal
    assert tokenizer.padding_side == "right"                         # restored
    sampled = [greedy_answers(model, tokenizer, prompts, 6, temperature=1.0, seed=s) for s in (0, 0, 1)]
    assert sampled[0] == sampled[1] != sampled[2]                    # seeded: repeatable; another seed differs
    assert greedy_answers(model, tokenizer, prompts, 6, temperature=1e-4) == batched   # T -> 0 is greedy
    seen: list[int] = []
    assert greedy_answers(model, tokenizer, prompts, 6, batch_size=3, on_batch=seen.append) == batched
    assert seen == [3, 1]                                            # a progress bar's updates: one per batch
    long = "the cat sat " * 30                                       # 360 characters, context 64
    assert greedy_answers(model, tokenizer, [long], 6) == greedy_answers(model, tokenizer, [long[-58:]], 6)
    assert tokenizer.truncation_side == "right"                      # restored


def test_exact_match_uses_the_verifiers_and_a_budget_per_family():
    rows = load_tasks("test", ["arithmetic"])[:3] + load_tasks("test", ["format_list"])[:2]

    class Echo:  # a "model" whose greedy answer is the gold answer for arithmetic, junk otherwise
        pass

    import ftlib.metrics.exact_match as ev
    calls = []

    def fake_greedy(model, tokenizer, prompts, max_new_tokens, batch_size=32, **sampling):
        calls.append(max_new_tokens)
        by_prompt = {r["prompt"]: r for r in rows}
        return [by_prompt[p]["answer"] if by_prompt[p]["family"] == "arithmetic" else "no" for p in prompts]

    original = ev.greedy_answers
    ev.greedy_answers = fake_greedy
    try:
        result = exact_match(Echo(), CharTokenizer(), rows, render=lambda p: p)
    finally:
        ev.greedy_answers = original
    assert result.correct == [True, True, True, False, False]
    assert str(result.by_family()["arithmetic"]).startswith("100% (3/3")
    assert calls == [answer_budget(CharTokenizer(), "arithmetic"), answer_budget(CharTokenizer(), "format_list")]


def test_generation_stops_at_the_end_of_turn_token():
    from ftlib.engine.sft_data import stop_ids
    from ftlib.products.registry import load_tokenizer
    course = load_tokenizer("course-base", profile="smoke")
    assert stop_ids(course) == [course.eos_token_id, course.convert_tokens_to_ids("<|im_end|>")]
    smol = load_tokenizer("smollm2-135m")
    assert stop_ids(smol) == [smol.convert_tokens_to_ids("<|im_end|>")]      # its eos already is <|im_end|>


def test_copy_accuracy_separates_a_model_that_copies_from_one_that_cannot():
    from ftlib.metrics.exact_match import copy_accuracy
    from ftlib.engine.models import TinyConfig, tiny_llama
    from ftlib.products.registry import load_model
    words = "wheat beans barley goats rabbits soup potato plum apples cheese carrot bees".split()
    smol, smol_tok = load_model("smollm2-135m")
    assert copy_accuracy(smol, smol_tok, words, n=10) > 0.5
    torch.manual_seed(0)
    random_model = tiny_llama(TinyConfig(vocab_size=len(smol_tok), hidden_size=32, n_layers=1, n_heads=4,
                                         n_kv_heads=2, intermediate_size=48, max_seq_len=128))
    assert copy_accuracy(random_model, smol_tok, words, n=10) < 0.1


def test_held_out_rows_is_a_seeded_sample_of_each_family():
    from ftlib.metrics.exact_match import held_out_rows
    rows = held_out_rows(5, ["fact_lookup", "arithmetic"], seed=0)
    assert [r["family"] for r in rows] == ["fact_lookup"] * 5 + ["arithmetic"] * 5
    assert rows == held_out_rows(5, ["fact_lookup", "arithmetic"], seed=0)
    assert rows != held_out_rows(5, ["fact_lookup", "arithmetic"], seed=1)
    keys = {r["meta"]["key"] for r in rows[:5]}
    assert len(keys) > 2                                  # not one item asked five ways
    assert len(held_out_rows(10_000, ["fact_lookup"])) == 100
