#!/usr/bin/env bash
# The GPU checks of issue 19 as one prepared device call (see docs/performance.md, section GPUs). On the device machine
# (its own Python with torch + CUDA; no fast-bleu, which only BLEU needs), from the repository root:
#   bash scripts/gpu_check.sh            # the bench against the reference, then the CUDA tests     (<= 9 min)
#   bash scripts/gpu_check.sh extra      # bench eager / unfused / bf16, step profiles, determinism (<= 6 min)
#   bash scripts/gpu_check.sh protocol   # the paper's full protocol, time-boxed, resumable         (<= 9 min)
# Each is one device call (10 minutes at most); every stage has its own time limit (stages.txt says
# which ran out), the figures first.
# Results go to $OUT (the device tool's return folder) or gpu_out/. The oracle's parameters must be
# copied first into the git-ignored data/ folder and carried:  mkdir -p data && cp ../shared/data/seqgan_oracle/target_params.npz data/
# (carry: ["data", ".whl"]).
# fast-bleu (for the CUDA tests of text runs) comes as a carried wheel: scripts/gpu_wheels.sh builds .whl/.
set -u
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && PYTHONPATH=src:/tmp/site
fi
ORACLE="data.oracle_path=data/target_params.npz"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch; print(torch.__version__, torch.version.cuda)" >> "$OUT/gpu.txt"

if [ "${1:-checks}" = protocol ]; then
  # The paper's schedule, configs/oracle_seqgan.yaml unchanged but for the device (and the oracle's path).
  run=gpu_runs/oracle_seqgan
  if [ -d "$run" ]; then args=(--resume "$run"); else args=(configs/oracle_seqgan.yaml --out "$run" device=cuda "$ORACLE"); fi
  /usr/bin/time -v timeout -s INT 510 python3 -m seqgan train "${args[@]}" > "$OUT/protocol.log" 2>&1
  cp "$run/metrics.jsonl" "$run/timings.json" "$OUT/" 2>/dev/null
  python3 -m seqgan plot "$run" --out "$OUT/curve.png" >> "$OUT/protocol.log" 2>&1
  python3 -m seqgan sweep "$run@mle" "$run" --labels MLE SeqGAN --temperatures 0.8:1.2:0.1 -n 10000 --out "$OUT" >> "$OUT/protocol.log" 2>&1
  exit 0
fi

stage() { local limit=$1; shift; timeout -s INT "$limit" "$@"; echo "exit $? after limit ${limit}s: $*" >> "$OUT/stages.txt"; }

if [ "${1:-checks}" = extra ]; then
  stage 50 python3 bench/adversarial_step.py --device cuda --repeats 3 --skip-naive --cuda-graphs off > "$OUT/bench_cuda_eager.json" 2>&1
  stage 50 python3 bench/adversarial_step.py --device cuda --repeats 3 --skip-naive --fused-conv off > "$OUT/bench_cuda_unfused.json" 2>&1
  stage 50 python3 bench/adversarial_step.py --device cuda --repeats 3 --skip-naive --precision bf16 > "$OUT/bench_cuda_bf16.json" 2>&1
  stage 40 python3 bench/step_profile.py --device cuda --steps 50 > "$OUT/step_profile_cuda.txt" 2>&1  # a graphed step, kernel by kernel
  # seed-to-seed spread without the deterministic switch, and its cost with it: the smoke config, longer
  for det in false false true true; do
    stage 30 /usr/bin/time -f "deterministic=$det %e s" python3 -m seqgan train configs/smoke.yaml device=cuda deterministic=$det \
      pretrain.epochs=20 adversarial.epochs=20 --out "gpu_runs/det_${det}_$RANDOM" --quiet 2>> "$OUT/determinism.txt"
  done
  for run in gpu_runs/det_*; do tail -1 "$run/metrics.jsonl" >> "$OUT/determinism.txt"; done
  exit 0
fi

stage 120 python3 bench/adversarial_step.py --device cuda --repeats 3 > "$OUT/bench_cuda_fp32.json" 2>&1
# The command-line tests alone took 136 s on this project's CPU (SEQGAN_CUDA_TESTS_ON=cpu), each a fresh process.
stage 420 python3 -m pytest -m cuda -q -p no:cacheprovider --durations=20 > "$OUT/cuda_tests.txt" 2>&1
