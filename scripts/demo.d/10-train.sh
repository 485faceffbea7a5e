# Train the built-in CNN on Fashion-MNIST and evaluate it on the test split.
set -euo pipefail
if [ -f "$DEMO_OUT/model.pt" ] && [ -z "${DEMO_RETRAIN:-}" ]; then
  echo "reusing $DEMO_OUT/model.pt (set DEMO_RETRAIN=1 to train again)"
else
  "$AEGIS" train --data fashion-mnist --arch cnn --epochs 4 --out "$DEMO_OUT/model.pt" --result "$DEMO_OUT/train.json"
fi
"$AEGIS" eval --model "$DEMO_OUT/model.pt" --data fashion-mnist --split test --result "$DEMO_OUT/eval.json" --quiet | head -14
echo "model: $DEMO_OUT/model.pt  training result: $DEMO_OUT/train.json  evaluation: $DEMO_OUT/eval.json"
