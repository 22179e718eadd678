"""The engine: profiles and hardware, models and the cache store, the training loop, and the
chapters' training runs (pretraining, SFT, reward model, PPO, GRPO, DPO)."""
