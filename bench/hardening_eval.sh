#!/usr/bin/env bash
# The hardening issue's "Done when" figures on Fashion-MNIST (built-in CNN,
# first 1000 test images, Linf eps 0.1): PGD-AT, TRADES and fast-AT with their
# training times (wall and CPU: the machine may be shared) and clean / robust
# accuracy under the evaluation ensemble (`aegis evaluate`: APGD-CE, targeted
# APGD-DLR, Square, with sanity checks); defensive distillation under plain
# PGD vs the evaluation; randomized smoothing certificates vs empirical L2
# robustness; detector ROC AUC. Outputs go to $OUT (default out/hardening-eval);
# bench/README.md records them. STAGES picks a subset (e.g. STAGES="pgd-at").
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIS="${AEGIS:-$PWD/build/bin/aegis}"
# The binary that has `evaluate` and `attack` (the evasion work); the same one once merged.
AEGIS_EVAL="${AEGIS_EVAL:-$AEGIS}"
OUT="${OUT:-$PWD/out/hardening-eval}"
STAGES="${STAGES:-standard pgd-at trades fast-at distillation smoothing detectors}"
N="${N:-1000}"
# quick (20 steps, 3 targets, 300 queries) or standard (AutoAttack's 100, 9, 5000).
BUDGET="${BUDGET:-standard}"
export AEGIS_THREADS="${AEGIS_THREADS:-2}"
mkdir -p "$OUT"
want() { [[ " $STAGES " == *" $1 "* ]]; }

# Runs a command, recording wall and CPU seconds in $OUT/$1.time.
timed() {
  local name="$1"; shift
  /usr/bin/time -f '{"wall_s": %e, "cpu_s": %U, "sys_s": %S}' -o "$OUT/$name.time" "$@"
  echo "$name: $(cat "$OUT/$name.time")"
}
evaluate() {  # model, name, extra evaluate flags
  local model="$1" name="$2"; shift 2
  [ "$BUDGET" = standard ] || name="$name.$BUDGET"
  "$AEGIS_EVAL" evaluate --model "$model" --data fashion-mnist --norm linf --eps 0.1 --n "$N" --batch-size 250 --budget "$BUDGET" \
    --result "$OUT/$name.eval.json" --quiet "$@" | tee "$OUT/$name.eval.txt"
}
common=(--data fashion-mnist --arch cnn --val-fraction 0.05 --quiet)

if want standard; then
  [ -f "$OUT/standard.pt" ] || timed standard "$AEGIS" train "${common[@]}" --epochs 4 --out "$OUT/standard.pt"
  evaluate "$OUT/standard.pt" standard
fi
if want pgd-at; then
  # Cheap random-start FGSM epochs first, then PGD with few large steps; eps
  # warm-up over the first epoch; one-cycle learning rate.
  timed pgd-at "$AEGIS" train "${common[@]}" --defense pgd-at --eps 0.1 --epochs "${PGDAT_EPOCHS:-4}" \
    --fast-epochs "${PGDAT_FAST:-2}" --attack-steps "${PGDAT_STEPS:-3}" --step-size "${PGDAT_STEP:-0.04}" \
    --warmup-epochs 1 --schedule onecycle --lr 3e-3 --dropout 0 --weight-decay 5e-4 --out "$OUT/pgd-at.pt"
  evaluate "$OUT/pgd-at.pt" pgd-at
fi
if want trades; then
  timed trades "$AEGIS" train "${common[@]}" --defense trades --beta 6 --eps 0.1 --epochs 3 --attack-steps 3 \
    --step-size 0.04 --warmup-epochs 1 --schedule onecycle --lr 3e-3 --dropout 0 --out "$OUT/trades.pt"
  evaluate "$OUT/trades.pt" trades
fi
if want fast-at; then
  timed fast-at "$AEGIS" train "${common[@]}" --defense fast-at --eps 0.1 --epochs 6 --warmup-epochs 1 \
    --schedule onecycle --lr 3e-3 --dropout 0 --out "$OUT/fast-at.pt"
  evaluate "$OUT/fast-at.pt" fast-at
fi
if want distillation; then
  # Teacher trained at T = 50 on the true labels, student at T = 50 on its soft labels; deployed at T = 1.
  [ -f "$OUT/teacher50.pt" ] || "$AEGIS" train "${common[@]}" --defense distillation --hard-weight 1 \
    --temperature 50 --epochs 3 --out "$OUT/teacher50.pt"
  timed distillation "$AEGIS" train "${common[@]}" --defense distillation --teacher "$OUT/teacher50.pt" \
    --temperature 50 --epochs 3 --out "$OUT/distilled.pt"
  # Plain-gradient PGD-20 (cross-entropy loss): what a naive evaluation reports.
  "$AEGIS_EVAL" attack --model "$OUT/distilled.pt" --data fashion-mnist --attack pgd --eps 0.1 --steps 20 -n "$N" \
    --batch-size 250 --grid 0 --out "$OUT/distilled.pgd-ce" --quiet | tee "$OUT/distilled.pgd-ce.txt"
  evaluate "$OUT/distilled.pt" distilled
  # Transfer: PGD-20 examples crafted on the standard model, judged by the distilled one.
  "$AEGIS_EVAL" attack --model "$OUT/standard.pt" --data fashion-mnist --attack pgd --eps 0.1 --steps 20 -n "$N" \
    --batch-size 250 --grid 0 --out "$OUT/transfer" --quiet | tee "$OUT/transfer.txt"
  "$AEGIS" eval --model "$OUT/distilled.pt" --data "$OUT/transfer/x_adv.npy" --labels "$OUT/transfer/y.npy" \
    --result "$OUT/distilled.transfer.json" --quiet | head -1 | tee "$OUT/distilled.transfer.txt"
fi
if want smoothing; then
  # Certificates of the smoothed standard and PGD-AT models (sigma 0.25; a
  # Gaussian-augmented base model would certify more) beside the same smoothed
  # models under attack (L2 PGD on the soft smoothed classifier with 16 noise
  # draws per step): certified accuracy at r must stay below the empirical
  # robust accuracy at L2 eps r.
  for m in standard pgd-at; do
    [ -f "$OUT/$m.pt" ] || continue
    "$AEGIS" certify --model "$OUT/$m.pt" --data fashion-mnist --limit "${CERT_N:-200}" --sigma 0.25 --n 1000 \
      --n0 100 --alpha 0.001 --radius 0.25,0.5,1.0 --attack-eps 0.25,0.5,1.0 --attack-steps 20 --attack-eot 16 \
      --result "$OUT/$m.certify.json" --quiet | tee "$OUT/$m.certify.txt"
  done
fi
if want detectors; then
  for det in ${DETECTORS:-feature-squeezing mahalanobis lid}; do
    "$AEGIS" detect-eval --model "$OUT/standard.pt" --data fashion-mnist --limit "$N" --calibration-samples 300 \
      --detector "$det" --eps 0.1 --attacks fgsm,pgd,cw --adaptive --save "$OUT/standard.$det.json" \
      --result "$OUT/$det.detect.json" --quiet | tee "$OUT/$det.detect.txt"
  done
fi
