#!/usr/bin/env bash
# DP-SGD on Fashion-MNIST (issue #15). Not part of ctest; run it with nothing
# else on the machine (the overhead figures are timings).
#
#   bench/dp_eval.sh overhead [out-dir]   ~3 min: DP-SGD step time and peak memory over aegis's own
#                                         non-private step, same model, same (physical) batch
#   bench/dp_eval.sh accuracy [out-dir]   ~45 min: test accuracy at epsilon 1, 2, 3, 8 (delta 1e-5)
#                                         with the recipe below (each run ~11 min on 2 cores);
#                                         EPSILONS="1 2" picks some
# AEGIS=path/to/aegis overrides the binary. Results: JSON and logs in out-dir (default build/dp-eval).
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIS="${AEGIS:-build/bin/aegis}"
WHAT="${1:-overhead}"
OUT="${2:-build/dp-eval}"
mkdir -p "$OUT"

# The recipe: Tramer and Boneh 2021's CNN (--arch cnn-dp: 26k parameters, tanh), all 60,000 training
# images, Poisson batches of 2048 expected, 40 epochs (1172 steps), SGD with Nesterov momentum 0.9 at a
# constant lr 4 (a cosine decay did worse), clipping norm 0.1; the accountant (PRV) picks sigma.
RECIPE=(--data fashion-mnist --arch cnn-dp --defense dp-sgd --delta 1e-5 --epochs 40 --batch-size 2048 --lr 4
        --optimizer sgd --schedule constant --max-grad-norm 0.1 --val-fraction 0 --weight-decay 0 --dropout 0
        --physical-batch-size 512)

if [ "$WHAT" = accuracy ]; then
  for eps in ${EPSILONS:-1 2 3 8}; do
    /usr/bin/time -f "%e s wall, %M KiB peak" -o "$OUT/eps$eps.time" \
      "$AEGIS" train "${RECIPE[@]}" --epsilon "$eps" --quiet -o "$OUT/eps$eps.pt" --result "$OUT/eps$eps.json"
    acc=$("$AEGIS" eval -m "$OUT/eps$eps.pt" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["metrics"]["accuracy"])')
    echo "epsilon $eps: test accuracy $acc ($(cat "$OUT/eps$eps.time"))" | tee -a "$OUT/accuracy.txt"
  done
  exit 0
fi

# Overhead: one epoch over 20,000 images at batch 256 (the DP run's expected Poisson batch is 256 and its
# physical batch 256, so both take ~79 steps); seconds per step from the result's epoch time, peak
# resident memory from /usr/bin/time. The non-private run is aegis's trainer with the same optimiser.
step() {  # name, extra args...
  local name=$1; shift
  /usr/bin/time -f "%M" -o "$OUT/$name.mem" "$AEGIS" train --data fashion-mnist --limit 20000 --epochs 1 \
    --batch-size 256 --lr 0.1 --optimizer sgd --schedule constant --val-fraction 0 --weight-decay 0 --dropout 0 \
    --normalize none --quiet -o "$OUT/$name.pt" --result "$OUT/$name.json" "$@" > "$OUT/$name.log"
  python3 - "$OUT/$name.json" "$OUT/$name.mem" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
res = r.get("result", r)
h = res["history"][0]
steps = -(-20000 // 256)
print(f'{sys.argv[3]}: {h["seconds"] / steps * 1000:.1f} ms/step, peak {int(open(sys.argv[2]).read().split()[-1]) / 1024:.0f} MiB')
PY
}
for arch in cnn-dp cnn; do
  step "$arch-plain" --arch "$arch" | tee -a "$OUT/overhead.txt"
  step "$arch-dp" --arch "$arch" --defense dp-sgd --noise-multiplier 1 --physical-batch-size 256 --seeded-noise \
    | tee -a "$OUT/overhead.txt"
done
