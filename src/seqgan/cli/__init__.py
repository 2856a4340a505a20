"""The `seqgan` command line: train, sample, evaluate."""
