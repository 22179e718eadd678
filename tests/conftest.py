"""Fixtures shared by the tests of the chat-model modules (sft_train, reward, rl_runs, dpo)."""
import pytest
import torch

from ftlib.engine.models import TinyConfig, tiny_llama
from ftlib.products.registry import load_tokenizer
from ftlib.engine.sft_data import chatml_template, stop_ids


@pytest.fixture(scope="module")
def tok():
    """The course tokenizer (smoke) with the course's ChatML template."""
    t = load_tokenizer("course-base", profile="smoke")
    t.chat_template = chatml_template()
    return t


@pytest.fixture
def tiny_chat_lm(tok):
    """``make(seed=0)``: a random 2-layer Llama over ``tok``'s vocabulary that stops at end of turn."""
    def make(seed: int = 0):
        torch.manual_seed(seed)
        model = tiny_llama(TinyConfig(vocab_size=len(tok), hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
                                      intermediate_size=48, max_seq_len=256), pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        model.generation_config.eos_token_id = stop_ids(tok)
        return model
    return make
