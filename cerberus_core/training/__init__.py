"""The training layer: TrainConfig and its checks, the loop, losses, teacher targets, checkpoints, zero-shot transfer runs."""
