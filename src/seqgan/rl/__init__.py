"""The reinforcement-learning core of SeqGAN: Monte Carlo rollout rewards, the delayed rollout
policy, and the losses (policy gradient, maximum likelihood, discriminator)."""
