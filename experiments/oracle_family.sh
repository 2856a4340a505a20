#!/usr/bin/env bash
# The policy-gradient family on the paper's oracle at one reduced budget, seed by seed:
# MLE only, SeqGAN, MaliGAN and RankGAN from the same MLE-pre-trained G, LeakGAN from its own G
# after as many MLE epochs, then one temperature sweep of them all. A study, not a benchmark: its
# results are in docs/algorithms.md.
#
#   bash experiments/oracle_family.sh OUT SEED [SEED ...]     # e.g. runs/family 0 1
#
# The budget (every GAN the same; the ablations' budget of experiments/ablations.py, with the
# paper's G and D sizes):
#   MLE pre-training 10 epochs (shared; the MLE row continues it to epoch 20 as well)
#   -> D (ranker) pre-training 3 x (2,000 negatives + 2,000 positives, 1 epoch)
#   -> 10 adversarial epochs of 1 G step (batch 64; 16 rollouts for SeqGAN and RankGAN) + 1 D round
#      (1,000 + 1,000, 1 epoch).
# MaliGAN's real prefix N falls by 2 an epoch (maligan.mle_step=2), so that its mixed schedule
# runs from N = 20 to free sampling within the 10 epochs. Everything else is each config's
# default. Sweep: 10,000 samples per run and temperature, NLL-test on the 10,000 held-out samples.
set -euo pipefail
out=$1
shift
seqgan=${SEQGAN:-seqgan}
budget="pretrain.epochs=0 d_pretrain.steps=3 d_pretrain.epochs=1 d_pretrain.num_negatives=2000
  adversarial.epochs=10 adversarial.d_steps=1 adversarial.d_epochs=1 adversarial.num_negatives=1000
  eval.every=5 eval.final_samples=0 checkpoint.every=1000 checkpoint.keep=1"
for seed in "$@"; do
  dir=$out/seed$seed
  base=$dir/mle
  [ -e "$base/checkpoints/latest" ] ||
    $seqgan train configs/oracle_mle.yaml --out "$base" --quiet seed="$seed" pretrain.epochs=20 \
      eval.every=10 eval.final_samples=0 checkpoint.every=10 checkpoint.keep=5
  start="pretrain.init_from=$base@0-mle-000010"
  for algo in seqgan maligan rankgan; do
    extra=""
    [ "$algo" = maligan ] && extra="maligan.mle_step=2"
    [ -e "$dir/$algo/checkpoints/latest" ] ||
      # shellcheck disable=SC2086
      $seqgan train "configs/oracle_$algo.yaml" --out "$dir/$algo" --quiet seed="$seed" "$start" $budget $extra
  done
  [ -e "$dir/leakgan/checkpoints/latest" ] ||
    # shellcheck disable=SC2086
    $seqgan train configs/oracle_leakgan.yaml --out "$dir/leakgan" --quiet seed="$seed" $budget \
      pretrain.epochs=10 leakgan.pretrain_g_epochs=0 leakgan.interleave_every=0 checkpoint.every=10 \
      checkpoint.keep=5
  $seqgan sweep "$base@0-mle-000010" "$base@0-mle-000020" "$dir/seqgan" "$dir/maligan" "$dir/rankgan" \
    "$dir/leakgan@0-mle-000010" "$dir/leakgan" \
    --labels "MLE 10 epochs (the GANs' start)" "MLE 20 epochs" SeqGAN MaliGAN RankGAN \
    "LeakGAN's G, MLE 10 epochs" LeakGAN \
    --temperatures 0.8:1.2:0.1 --seed "$seed" --out "$dir/sweep" --table | tee "$dir/sweep.txt"
done
