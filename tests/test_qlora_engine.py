"""ftlib.engine.qlora: the batches chapter 04's two methods share, and the recipe the product records."""
import torch

from ftlib.data import load_tasks
from ftlib.engine.qlora import QLORA_RECIPES, lora_config, task_batches
from ftlib.engine.sft_data import IGNORE
from ftlib.products.registry import PRODUCTS, inputs, load_tokenizer


def same(x, y) -> bool:
    return x.shape == y.shape and torch.equal(x, y)


def test_the_same_seed_and_step_give_the_same_rows_and_labels_only_on_the_answer():
    tok = load_tokenizer()                                           # SmolLM2's, as chapter 04 trains it
    rows = load_tasks("train", families=["extract_json"])[:40]
    encode, get_batch = task_batches(tok, rows, batch_size=4, max_len=128, seed=0)
    a, b, other = get_batch(3, 0), get_batch(3, 0), get_batch(4, 0)
    assert same(a["input_ids"], b["input_ids"]) and not same(a["input_ids"], other["input_ids"])
    example = encode(rows[0])
    answer = tok.decode([t for t, l in zip(example.input_ids, example.labels) if l != IGNORE])
    assert answer.startswith(rows[0]["answer"]) and "<|im_end|>" in answer and rows[0]["prompt"] not in answer
    _, other_seed = task_batches(tok, rows, batch_size=4, max_len=128, seed=1)
    assert not same(other_seed(3, 0)["input_ids"], a["input_ids"])


def test_the_qlora_product_records_its_recipe_and_lora_targets_every_linear_layer():
    product = PRODUCTS["smollm2-qlora"]
    assert product.adapter and product.recipe("cpu")["qlora"]["steps"] == QLORA_RECIPES["cpu"].steps
    assert inputs("smollm2-qlora", profile="smoke")["recipe"]["qlora"]["family"] == "extract_json"
    config = lora_config(8)
    assert config.r == 8 and config.lora_alpha == 16 and config.target_modules == "all-linear"
