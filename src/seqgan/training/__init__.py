"""Training: the run (phases MLE -> D pre-training -> adversarial), its steps, and checkpoints."""
