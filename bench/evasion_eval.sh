#!/usr/bin/env bash
# The issue's "Done when" measurement: a 2-epoch Fashion-MNIST CNN, the first
# 1000 test images, Linf eps 0.1; PGD-20, C&W-100, Square-1000 (p_init 0.8),
# DeepFool (first 250 images) and the AutoAttack-protocol evaluation.
# Figures go to $OUT (default out/evasion-eval); bench/README.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIS="${AEGIS:-$PWD/build/bin/aegis}"
OUT="${OUT:-$PWD/out/evasion-eval}"
mkdir -p "$OUT"
if [ ! -f "$OUT/model.pt" ]; then
  "$AEGIS" train --data fashion-mnist --arch cnn --epochs 2 --out "$OUT/model.pt" --quiet
fi
run() {  # name, then aegis attack arguments
  local name="$1"; shift
  "$AEGIS" attack --model "$OUT/model.pt" --data fashion-mnist --batch-size 250 --out "$OUT/$name" --quiet "$@" \
    | tee "$OUT/$name.txt"
}
run pgd20 --attack pgd --eps 0.1 --steps 20 -n 1000
run cw100 --attack cw --steps 100 --param binary_search_steps=1 --param initial_const=1 -n 1000
run square1000 --attack square --eps 0.1 --param queries=1000 --param p_init=0.8 -n 1000
run deepfool --attack deepfool --steps 50 -n 250
"$AEGIS" evaluate --model "$OUT/model.pt" --data fashion-mnist --norm linf --eps 0.1 --n 1000 --batch-size 250 \
  --result "$OUT/evaluate.json" | tee "$OUT/evaluate.txt"
