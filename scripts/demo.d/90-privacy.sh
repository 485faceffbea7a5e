# Differential privacy: what a budget costs in noise (the accountants), a
# DP-SGD model trained to epsilon 3 on 6000 Fashion-MNIST images with its
# budget recorded in the model, and the privacy audit: membership inference
# on the model, and the one-run audit that retrains its recipe with canaries
# to test the claim, beside a non-private twin. About a minute.
set -euo pipefail
"$AEGIS" dp noise --epsilon 3 --delta 1e-5 --batch-size 2048 --dataset-size 60000 --epochs 40
"$AEGIS" train --data fashion-mnist --limit 6000 --arch cnn-dp --defense dp-sgd --epsilon 3 --delta 1e-5 \
  --epochs 8 --batch-size 512 --lr 4 --optimizer sgd --schedule cosine --max-grad-norm 0.1 --weight-decay 0 \
  --dropout 0 --val-fraction 0 --physical-batch-size 256 -o "$DEMO_OUT/dp-model.pt" 2>&1 | grep -v "%" | tail -3
"$AEGIS" info "$DEMO_OUT/dp-model.pt" | grep -E "privacy|dp-sgd"
cat > "$DEMO_OUT/privacy-suite.toml" <<'TOML'
[audit]
name = "privacy-demo"
samples = 500
[[check]]
id = "membership"
check = "membership-inference"
[[check]]
id = "dp-audit"
check = "dp-audit"
[check.params]
canaries = 500
twin_epochs = 30
TOML
"$AEGIS" audit --model "$DEMO_OUT/dp-model.pt" --data fashion-mnist --split test \
  --training-data fashion-mnist --suite "$DEMO_OUT/privacy-suite.toml" --out "$DEMO_OUT/privacy-audit" 2>&1 \
  | grep -v "%"
python3 - "$DEMO_OUT/privacy-audit/report.json" <<'PY'
import json, sys
c = next(c for c in json.load(open(sys.argv[1]))["checks"] if c["id"] == "dp-audit")
m = c["metrics"]
print("DP audit (canaries in a retrained copy; a lower bound above the claim would be a broken guarantee):")
print(f'  {"run":<18}{"claimed epsilon":>16}{"epsilon lower bound":>21}{"canary MI AUC":>15}')
for name, key in (("DP-SGD", "private"), ("non-private twin", "non_private_twin")):
    r = m[key]
    claimed = r["claimed_epsilon"] if isinstance(r["claimed_epsilon"], str) else f'{r["claimed_epsilon"]:.3f}'
    print(f'  {name:<18}{claimed:>16}{r["bound"]["epsilon_lower_bound"]:>21.3f}{r["membership"]["auc"]:>15.3f}')
PY
echo "report: $DEMO_OUT/privacy-audit/report.html"
