# Harden the demo model: PGD adversarial training (Linf eps 0.1) beside the
# standard model from 10-train, then both evaluated the same way (AutoAttack
# protocol, quick budget, 300 test images) and printed side by side. To stay
# within a couple of minutes the demo trains on the first 20000 training
# images for 2 epochs (one cheap FGSM epoch, one PGD-3 epoch); bench/README.md
# has the full-data recipe and its figures.
set -euo pipefail
if [ -f "$DEMO_OUT/hardened.pt" ] && [ -z "${DEMO_RETRAIN:-}" ]; then
  echo "reusing $DEMO_OUT/hardened.pt (set DEMO_RETRAIN=1 to train again)"
else
  "$AEGIS" train --data fashion-mnist --limit 20000 --arch cnn --defense pgd-at --eps 0.1 --epochs 2 \
    --fast-epochs 1 --attack-steps 3 --step-size 0.04 --warmup-epochs 0.5 --schedule onecycle --lr 3e-3 \
    --dropout 0 --checkpoint-dir "$DEMO_OUT/harden-ckpt" --out "$DEMO_OUT/hardened.pt" --quiet
fi
for m in model hardened; do
  "$AEGIS" evaluate --model "$DEMO_OUT/$m.pt" --data fashion-mnist --norm linf --eps 0.1 --n 300 --budget quick \
    --sanity-samples 50 --result "$DEMO_OUT/$m.harden-eval.json" --quiet >/dev/null
done
printf '\n%-28s %10s %10s\n' "Linf eps 0.1, 300 images" standard hardened
row() { printf '%-28s %10s %10s\n' "$1" "$(jq -r "$2" "$DEMO_OUT/model.harden-eval.json")" \
  "$(jq -r "$2" "$DEMO_OUT/hardened.harden-eval.json")"; }
row "clean accuracy" '.evaluation.clean_accuracy * 1000 | round / 1000'
row "robust accuracy" '.evaluation.robust_accuracy * 1000 | round / 1000'
row "sanity warnings" '.evaluation.warnings | length'
echo
echo "how the hardened model was trained (from its metadata):"
"$AEGIS" info --model "$DEMO_OUT/hardened.pt" --json | jq -c '.. | .training? // empty | {objective, objective_options}' | head -1
