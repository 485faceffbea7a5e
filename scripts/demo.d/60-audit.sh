# Audit the standard model with the quick budget (report.json + report.html,
# top findings); when the hardening stage left a hardened model, audit it too
# and show what hardening improved and what it regressed.
set -euo pipefail
"$AEGIS" audit --model "$DEMO_OUT/model.pt" --data fashion-mnist --budget quick --out "$DEMO_OUT/audit" --resume
if [ -f "$DEMO_OUT/hardened.pt" ]; then
  echo
  echo "== audit of the hardened model"
  "$AEGIS" audit --model "$DEMO_OUT/hardened.pt" --data fashion-mnist --budget quick --out "$DEMO_OUT/audit-hardened" --resume
  echo
  echo "== aegis audit diff (standard -> hardened)"
  "$AEGIS" audit diff "$DEMO_OUT/audit/report.json" "$DEMO_OUT/audit-hardened/report.json"
else
  echo "(no $DEMO_OUT/hardened.pt: the hardening stage has not run, so there is no before/after diff)"
fi
