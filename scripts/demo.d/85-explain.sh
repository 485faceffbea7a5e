# Why the demo model decides as it does, and which explanation to trust:
# Integrated Gradients (with the completeness gap that says how far the
# attributions are from summing to f(x) - f(baseline)) scored by deletion and
# insertion against a random order and by the model-randomisation sanity
# check; SmoothGrad; and LIME, which needs only the model's outputs (so it
# also explains a served model), with the fidelity of its local surrogate;
# and the global surrogate tree with its fidelity per depth. About a minute.
set -euo pipefail
"$AEGIS" explain --model "$DEMO_OUT/model.pt" --data fashion-mnist --method ig --steps 32 -n 16 \
  --metrics deletion,insertion,sanity,faithfulness,infidelity --out "$DEMO_OUT/explain-ig" 2>&1 | grep -v "%"
"$AEGIS" explain --model "$DEMO_OUT/model.pt" --data fashion-mnist --method smoothgrad --samples 25 -n 16 \
  --metrics deletion --out "$DEMO_OUT/explain-smoothgrad" 2>&1 | grep -v "%"
"$AEGIS" explain --model "$DEMO_OUT/model.pt" --data fashion-mnist --method lime --samples 300 -n 8 \
  --metrics deletion --out "$DEMO_OUT/explain-lime" 2>&1 | grep -v "%"
# The model as rules: a decision tree fitted to its predictions, and how far to trust it (fidelity per depth).
"$AEGIS" explain --model "$DEMO_OUT/model.pt" --data fashion-mnist --method tree --depth 8 --fit-samples 10000 \
  -n 1000 --out "$DEMO_OUT/explain-tree" 2>&1 | grep -v "%"
echo "maps: $DEMO_OUT/explain-{ig,smoothgrad,lime}/grid.png (input | heat map | overlay)"
echo "rules: $DEMO_OUT/explain-tree/rules.txt"
