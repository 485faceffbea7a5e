# Why the demo model decides as it does: Integrated Gradients (Gauss-Legendre,
# with the completeness gap that says how far the attributions are from
# summing to f(x) - f(baseline)) and SmoothGrad on 16 test images. Seconds.
set -euo pipefail
"$AEGIS" explain --model "$DEMO_OUT/model.pt" --data fashion-mnist --method ig --steps 32 -n 16 \
  --out "$DEMO_OUT/explain-ig" 2>&1 | grep -v "%"
"$AEGIS" explain --model "$DEMO_OUT/model.pt" --data fashion-mnist --method smoothgrad --samples 25 -n 16 \
  --out "$DEMO_OUT/explain-smoothgrad" 2>&1 | grep -v "%"
echo "maps: $DEMO_OUT/explain-ig/grid.png and $DEMO_OUT/explain-smoothgrad/grid.png (input | heat map | overlay)"
