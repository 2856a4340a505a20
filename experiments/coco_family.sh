#!/usr/bin/env bash
# The policy-gradient family on COCO captions (Texygen's split and tokenisation) at one short budget:
# MLE, SeqGAN, MaliGAN and RankGAN from the same MLE-pre-trained G, LeakGAN from its own G after as
# many MLE epochs; then BLEU-2..5 / Self-BLEU-2..5 of each (10,000 samples at T = 1, all 10,000 test
# lines) and one BLEU-4 / Self-BLEU-4 temperature sweep of them all. A study, not a benchmark: its
# results are in docs/algorithms.md.
#
#   bash experiments/coco_family.sh OUT [SEED]     # e.g. runs/coco_family 0
#
# The budget (every GAN the same; each config's data, D and D schedule, with a G of 64-dim
# embeddings and 128 LSTM units, the size of docs/results.md's 64/128 runs):
#   MLE pre-training 5 epochs (shared) -> 10 D (ranker) pre-training rounds (5,000 negatives, 1 epoch)
#   -> 6 adversarial epochs of 1 G step + 1 D round (2,000 negatives, 1 epoch).
# (Texygen's rows: 80 MLE epochs and 100 adversarial epochs, G of 32 units; not this budget.)
# MaliGAN's real prefix N falls by 7 an epoch (maligan.mle_step=7 mle_every=1): 34, 27, ..., 0, so
# that its mixed schedule reaches free sampling within the 6 epochs (most captions have 8-15 words).
# LeakGAN: its worker 64/128, 5 MLE epochs, no interleaved MLE (none would fall inside 6 epochs).
set -euo pipefail
out=$1
seed=${2:-0}
seqgan=${SEQGAN:-seqgan}
size="generator.embed_dim=64 generator.hidden_dim=128"
budget="d_pretrain.steps=10 adversarial.epochs=6 eval.every=1 eval.final_samples=0 checkpoint.every=1 checkpoint.keep=50"
dir=$out/seed$seed
# shellcheck disable=SC2086
[ -e "$dir/seqgan/checkpoints/latest" ] ||
  $seqgan train configs/coco_seqgan.yaml --out "$dir/seqgan" --quiet seed="$seed" $size pretrain.epochs=5 $budget
base="$dir/seqgan@0-mle-000005"
for algo in maligan rankgan; do
  extra=""
  [ "$algo" = maligan ] && extra="maligan.mle_step=7 maligan.mle_every=1"
  # shellcheck disable=SC2086
  [ -e "$dir/$algo/checkpoints/latest" ] ||
    $seqgan train "configs/coco_$algo.yaml" --out "$dir/$algo" --quiet seed="$seed" $size \
      pretrain.init_from="$base" pretrain.epochs=0 $budget $extra
done
# shellcheck disable=SC2086
[ -e "$dir/leakgan/checkpoints/latest" ] ||
  $seqgan train configs/coco_leakgan.yaml --out "$dir/leakgan" --quiet seed="$seed" $size pretrain.epochs=5 \
    leakgan.pretrain_g_epochs=0 leakgan.interleave_every=0 $budget
for run in "$base" "$dir/seqgan" "$dir/maligan" "$dir/rankgan" "$dir/leakgan@0-mle-000005" "$dir/leakgan"; do
  name=$(echo "$run" | tr '/@' '__')
  [ -e "$dir/eval/$name.json" ] || {
    mkdir -p "$dir/eval"
    $seqgan evaluate "$run" -n 10000 --seed "$seed" >"$dir/eval/$name.json"
  }
done
$seqgan sweep "$base" "$dir/seqgan" "$dir/maligan" "$dir/rankgan" "$dir/leakgan@0-mle-000005" "$dir/leakgan" \
  --labels "MLE 5 epochs (the GANs' start)" SeqGAN MaliGAN RankGAN "LeakGAN's G, MLE 5 epochs" LeakGAN \
  --temperatures 0.7,0.8,0.9,1.0 --seed "$seed" --out "$dir/sweep" --table | tee "$dir/sweep.txt"
