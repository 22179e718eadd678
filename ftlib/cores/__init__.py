"""From-scratch cores: pure functions a chapter implements and tests against the library it teaches
(BPE, LoRA, NF4, the losses, corpus cleaning, the memory estimator, the statistics)."""
