# Robust accuracy of the demo model by the AutoAttack protocol (quick budget
# on 500 test images: about a minute on 2 cores), with its sanity checks.
set -euo pipefail
"$AEGIS" evaluate --model "$DEMO_OUT/model.pt" --data fashion-mnist --norm linf --eps 0.1 --n 500 \
  --budget quick --sanity-samples 100 --result "$DEMO_OUT/evaluate.json"
"$AEGIS" attack --model "$DEMO_OUT/model.pt" --data fashion-mnist --attack apgd --eps 0.1 --steps 20 -n 16 \
  --out "$DEMO_OUT/attack" --quiet
echo "evaluation: $DEMO_OUT/evaluate.json  adversarial examples: $DEMO_OUT/attack/ (grid.png: original | adversarial | perturbation)"
