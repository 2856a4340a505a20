#!/usr/bin/env bash
# GSGAN, RelGAN and a GAN from scratch on the paper's oracle at one reduced budget, seed by seed,
# beside the MLE and SeqGAN runs of experiments/oracle_family.sh (run that first, with the same OUT
# and seeds), then one temperature sweep of them all. A study, not a benchmark: its results are in
# docs/algorithms_relaxed.md.
#
#   bash experiments/oracle_relaxed.sh OUT SEED [SEED ...]     # e.g. runs/family 0 1
#   ALGOS="gsgan scratch" bash experiments/oracle_relaxed.sh OUT 1  # train only these (default: all three)
#
# The budget (each config's G, D, learning rates and schedules otherwise; the papers' 3,000
# iterations (GSGAN, RelGAN) and ScratchGAN's tens of thousands are not this budget):
#   gsgan: the family's MLE G after 10 epochs (OUT/seedN/mle@0-mle-000010), then 300 iterations of
#     1 G step + 5 D steps (batch 64), the inverse temperature annealed 'exp' to 100 at the last one;
#   relgan: its relational-memory G pre-trained by MLE for 10 epochs, then the same 300 iterations;
#   scratch: no pre-training, 300 iterations of batch 512: 153,600 sampled sequences, about what the
#     10 MLE epochs read (10 x 10,000 real ones) and the adversarial phases add.
# Sweep: 10,000 samples per run and temperature, NLL-test on the 10,000 held-out samples, of MLE 10
# epochs, SeqGAN and the runs of ALGOS. A run folder that exists is not trained again (finished or
# not: continue an unfinished one with `seqgan train --resume DIR`).
set -euo pipefail
out=$1
shift
seqgan=${SEQGAN:-seqgan}
algos=${ALGOS:-gsgan relgan scratch}
common="adversarial.epochs=300 eval.every=100 eval.final_samples=0 checkpoint.every=100 checkpoint.keep=5"
for seed in "$@"; do
  dir=$out/seed$seed
  base=$dir/mle
  [ -e "$base/checkpoints/latest" ] && [ -e "$dir/seqgan/checkpoints/latest" ] || {
    echo "no $base or $dir/seqgan: run experiments/oracle_family.sh $out $seed first" >&2
    exit 2
  }
  for algo in $algos; do
    case $algo in
      gsgan) extra="pretrain.init_from=$base@0-mle-000010 pretrain.epochs=0" ;;
      relgan) extra="pretrain.epochs=10" ;;
      scratch) extra="" ;;
      *) echo "unknown algorithm in ALGOS: $algo (use gsgan, relgan, scratch)" >&2 && exit 2 ;;
    esac
    # shellcheck disable=SC2086
    [ -e "$dir/$algo/checkpoints/latest" ] ||
      $seqgan train "configs/oracle_$algo.yaml" --out "$dir/$algo" --quiet seed="$seed" $extra $common
  done
  runs=("$base@0-mle-000010" "$dir/seqgan")
  labels=("MLE 10 epochs (the GANs' start)" SeqGAN)
  for algo in $algos; do
    case $algo in
      gsgan) runs+=("$dir/gsgan") && labels+=(GSGAN) ;;
      relgan) runs+=("$dir/relgan@mle" "$dir/relgan") && labels+=("RelGAN's G, MLE 10 epochs" RelGAN) ;;
      scratch) runs+=("$dir/scratch") && labels+=(scratch) ;;
    esac
  done
  $seqgan sweep "${runs[@]}" --labels "${labels[@]}" --temperatures 0.8:1.2:0.1 --seed "$seed" \
    --out "$dir/sweep_relaxed" --table | tee "$dir/sweep_relaxed.txt"
done
