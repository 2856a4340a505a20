#!/usr/bin/env bash
# ScratchGAN's language-model scores of the COCO family (experiments/coco_family.sh and the runs of
# docs/algorithms_relaxed.md, same OUT and seed) at T = 1, 10,000 samples each: `seqgan evaluate
# RUN --lm-scorer REF`. REF is an MLE LM trained apart from every GAN (seed 1, G 64/128, 3 epochs:
# the lowest NLL-test of the family's MLE curve), so that no GAN is scored by its own start.
# lm_score: REF's NLL of the samples (quality); reverse_lm_score: the test captions' NLL under an
# LM of REF's shape trained 5 epochs on the 10,000 samples alone (diversity and coverage).
# A study, not a benchmark: its results are in docs/algorithms_relaxed.md.
#
#   bash experiments/coco_lm_scores.sh OUT [SEED]     # e.g. runs/coco_family 0
set -euo pipefail
out=$1
seed=${2:-0}
seqgan=${SEQGAN:-seqgan}
python=${PYTHON:-python}
dir=$out/seed$seed
ref=$out/lm_reference
[ -e "$ref/timings.json" ] ||
  $seqgan train configs/coco_mle.yaml --out "$ref" --quiet seed=1 generator.embed_dim=64 generator.hidden_dim=128 pretrain.epochs=3
mkdir -p "$dir/lm"
for run in "$ref" "$dir/seqgan@0-mle-000005" "$dir/seqgan" "$dir/maligan" "$dir/rankgan" "$dir/leakgan@0-mle-000005" \
  "$dir/leakgan" "$dir/gsgan" "$dir/scratch" "$dir/scratch_pos" "$dir/scratch_vectors" "$dir/relgan@mle" "$dir/relgan"; do
  [ -e "${run%%@*}/timings.json" ] || { echo "not trained (or not finished): $run" >&2 && continue; }
  name=$(echo "${run#"$out"/}" | tr '/@' '__')
  [ -e "$dir/lm/$name.json" ] || $seqgan evaluate "$run" -n 10000 --seed "$seed" --lm-scorer "$ref" >"$dir/lm/$name.json"
done
$python - "$dir/lm" <<'PY'
import json, sys
from pathlib import Path
keys = ("lm_score", "reverse_lm_score", "nll_test", "bleu4_test", "self_bleu4", "unique_frac")
print("| run | LM score | reverse LM score | NLL-test | BLEU-4 | Self-BLEU-4 | unique |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for path in sorted(Path(sys.argv[1]).glob("*.json"), key=lambda p: p.stat().st_mtime):
    r = json.loads(path.read_text())
    print(f"| {path.stem} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
PY
