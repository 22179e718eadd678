"""Studies on top of the products: lm-eval harness, LLM-as-judge, RAG, human evaluation."""
