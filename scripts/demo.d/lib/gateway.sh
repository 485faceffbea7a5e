# Shared by the demo stages that serve the demo model (sourced, not a stage).
#   server_toml            prints the [server] table: loopback, any free port,
#                          keys.json and audit.db beside serve.toml
#   start_gateway DIR      runs `aegis serve --config DIR/serve.toml` in the
#                          background with the k-NN threshold calibrated for 1%
#                          false positives on Fashion-MNIST training images,
#                          waits until it listens, sets $url and $pid
#   stop_gateway           stops it (SIGTERM) and waits
server_toml() {
  cat <<TOML
[server]
host = "127.0.0.1"
port = 0
keys = "keys.json"
audit_log = "audit.db"
TOML
}

start_gateway() {
  local dir="$1"
  "$AEGIS" serve --config "$dir/serve.toml" --port-file "$dir/port" --knn-calibrate fashion-mnist --quiet \
    > "$dir/serve.log" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 600); do [ -s "$dir/port" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  [ -s "$dir/port" ] || { cat "$dir/serve.log"; exit 1; }
  url="http://127.0.0.1:$(cat "$dir/port")"
}

stop_gateway() {
  kill -TERM "$pid"
  wait "$pid" || true
  trap - EXIT
}
