"""Neural networks: the generator G, the discriminators D, and categorical sampling."""
