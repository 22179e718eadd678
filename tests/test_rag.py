"""ftlib.studies.rag: passages, BM25 retrieval, few-shot and RAG prompts."""
from ftlib.data import load_corpus, load_tasks
from ftlib.studies.rag import Retriever, few_shot_render, passages, rag_prompt, rag_render, recall_at_k


def test_passages_keep_whole_sentences_of_clean_english_documents():
    corpus = [{"lang": "en", "labels": [], "text": "One two three. Four five six! Seven eight?"},
              {"lang": "en", "labels": ["junk"], "text": "Bad doc."},
              {"lang": "zh", "labels": [], "text": "中文。"}]
    assert passages(corpus, max_words=6) == ["One two three. Four five six!", "Seven eight?"]
    assert passages(corpus, max_words=2) == ["One two three.", "Four five six!", "Seven eight?"]


def test_bm25_finds_the_passage_that_answers_and_recall_counts_it():
    retriever = Retriever(["Ystrel was founded by Dagny Rusk.", "Most families in Rhoswick keep bees.",
                           "The Oskelt is a long river."])
    assert retriever.search("Who founded Ystrel?", k=1) == ["Ystrel was founded by Dagny Rusk."]
    rows = [{"prompt": "Who founded Ystrel?", "answer": "Dagny Rusk", "meta": {"accept": ["dagny rusk"]}},
            {"prompt": "What do people keep in Rhoswick?", "answer": "goats", "meta": {}}]
    assert recall_at_k(retriever, rows, k=1) == [True, False]


def test_the_course_corpus_holds_the_facts_the_fact_task_asks_for():
    retriever = Retriever(passages(load_corpus()))
    rows = load_tasks("test", ["fact_lookup"])[:30]
    assert sum(recall_at_k(retriever, rows, k=3)) >= 25


def test_prompts_put_notes_and_examples_before_the_question(tok):
    notes = ["Ystrel was founded by Dagny Rusk."]
    text = rag_prompt("Who founded Ystrel?", notes)
    assert text.index("Dagny Rusk") < text.index("Question: Who founded Ystrel?")
    render = rag_render(tok, Retriever(notes + ["Bees."]), k=1)
    assert "1. Ystrel was founded" in render("Who founded Ystrel?")
    examples = load_tasks("train", ["arithmetic"])[:2]
    rendered = few_shot_render(tok, examples)("What is 2 plus 2?")
    assert rendered.index(examples[0]["prompt"]) < rendered.index(examples[0]["answer"]) < rendered.index("2 plus 2")
    assert rendered.endswith(tok.apply_chat_template([{"role": "user", "content": "What is 2 plus 2?"}],
                                                     tokenize=False, add_generation_prompt=True))
