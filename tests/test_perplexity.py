"""ftlib.metrics.perplexity.perplexity: token-weighted, strided, checked against hand computations."""
import math
from types import SimpleNamespace

import pytest
import torch

from ftlib.metrics.perplexity import Perplexity, perplexity, token_nlls


class Bigram(torch.nn.Module):
    """A model whose next-token distribution depends only on the current token (a fixed table),
    so the exact log-probabilities are known by hand and context length cannot change them."""

    def __init__(self, table):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(table, dtype=torch.float).log())
        self.config = SimpleNamespace(max_position_embeddings=4)

    @property
    def device(self):
        return self.logits.device

    def forward(self, input_ids):
        return SimpleNamespace(logits=self.logits[input_ids])


class Tokens:
    """'0 1 2' -> [0, 1, 2]."""
    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[int(t) for t in text.split()] for text in texts]}


TABLE = [[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]]   # rows: current token; sums to 1


def test_token_nlls_by_hand_whatever_the_window_and_stride():
    ids = [0, 1, 2, 1, 2, 0, 0, 2, 1]
    by_hand = [-math.log(TABLE[a][b]) for a, b in zip(ids, ids[1:])]
    model = Bigram(TABLE)
    for window, stride in [(20, 10), (4, 1), (4, 2), (4, 3), (2, 1)]:
        assert token_nlls(model, ids, window=window, stride=stride) == pytest.approx(by_hand), (window, stride)
    with pytest.raises(ValueError, match="stride"):
        token_nlls(model, ids, window=4, stride=4)


def test_corpus_perplexity_weights_tokens_not_texts():
    model = Bigram(TABLE)
    texts = ["1 2", "0 0 0 0 0"]                 # 1 scored token (p = .8) and 4 (p = .5 each)
    result = perplexity(model, Tokens(), texts, window=4, stride=2)
    assert result.tokens == [1, 4]
    assert result.value == pytest.approx(math.exp((-math.log(0.8) - 4 * math.log(0.5)) / 5))
    assert result.mean_of_texts == pytest.approx((1 / 0.8 + 2.0) / 2)
    assert result.value != pytest.approx(result.mean_of_texts)
    assert "5 tokens in 2 texts" in str(result)


def test_strided_perplexity_of_a_real_model_matches_one_pass_and_more_context_helps(tok, tiny_chat_lm):
    torch.manual_seed(0)
    model = tiny_chat_lm(seed=1)
    # train it a little on one repeated text so that context matters
    text = "the river runs past the mill and the mill grinds the wheat " * 6
    ids = tok(text, add_special_tokens=False)["input_ids"]
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = torch.tensor([ids[:120]])
    for _ in range(60):
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward(); optimiser.step(); optimiser.zero_grad()
    model.eval()
    with torch.no_grad():
        one_pass = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss.item()
    full = perplexity(model, tok, [text], window=len(ids), stride=len(ids) - 1)
    assert math.log(full.value) == pytest.approx(one_pass, rel=1e-5)    # HF's own loss: the same mean
    chunked = perplexity(model, tok, [text], window=16, stride=15)          # chunks from 1 token of context
    sliding = perplexity(model, tok, [text], window=16, stride=4)           # >= 12 tokens of context
    assert chunked.tokens == sliding.tokens == full.tokens == [len(ids) - 1]
    assert sliding.value < chunked.value


def test_perplexity_defaults_to_the_models_context_and_restores_training_mode():
    model = Bigram(TABLE).train()
    result = perplexity(model, Tokens(), ["0 1 2 1 2 0 0 2 1"])       # window 4, stride 2
    assert isinstance(result, Perplexity) and result.tokens == [8]
    assert model.training


def test_answer_perplexity_scores_only_the_answer_after_the_chat_prompt(tok, tiny_chat_lm):
    import math

    import torch

    from ftlib.engine.sft_data import chat_prompt
    from ftlib.metrics.perplexity import answer_perplexity
    model = tiny_chat_lm().eval()
    rows = [{"prompt": "What is 2 + 3?", "answer": "5"}, {"prompt": "Reverse 'otter'.", "answer": "retto"}]
    got = answer_perplexity(model, tok, rows)
    total, count = 0.0, 0
    for row in rows:                                          # by hand: the labels cover the answer alone
        prompt = tok(chat_prompt(tok, row["prompt"]), add_special_tokens=False)["input_ids"]
        answer = tok(row["answer"], add_special_tokens=False)["input_ids"]
        labels = torch.tensor([[-100] * len(prompt) + answer])
        with torch.no_grad():
            loss = model(torch.tensor([prompt + answer]), labels=labels).loss.item()
        total, count = total + loss * len(answer), count + len(answer)
    assert got.tokens == [len(tok(r["answer"], add_special_tokens=False)["input_ids"]) for r in rows]
    assert math.isclose(got.value, math.exp(total / count), rel_tol=1e-5)
