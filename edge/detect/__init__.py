"""Detection: the model runtime, the streaming detector and burst grouping."""
