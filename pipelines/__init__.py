"""Training stages (pretrain / mid-train / RL), evaluation and the study runner."""
