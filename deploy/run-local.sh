#!/usr/bin/env bash
# `make run`: the whole chain on this machine. modelserver stands in for tensorflow/serving on port 8500,
# the gateway listens on 50051. Waits until the gateway's health says SERVING, prints a command to try,
# and stops both cleanly on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
GRPCURL=.venv/bin/grpcurl
MODEL_BASE=${MODEL_BASE:-models/deeplab}
MODEL_PORT=${MODEL_PORT:-8500}
GATEWAY_PORT=${GATEWAY_PORT:-50051}
SHARED=${SHARED:-../shared}
LABELS=${LABELS:-$SHARED/models/deeplabv3_mnv2_pascal/labels.txt}
LOGS=${LOGS:-.run}
mkdir -p "$LOGS"

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped."
}
trap stop INT TERM EXIT

for port in "$MODEL_PORT" "$GATEWAY_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use; set MODEL_PORT / GATEWAY_PORT, or stop what listens there" >&2
    exit 1
  fi
done

echo "starting modelserver on :$MODEL_PORT (log: $LOGS/modelserver.log)"
"$PY" -m modelserver --port="$MODEL_PORT" --model_name=deeplab --model_base_path="$MODEL_BASE" \
  >"$LOGS/modelserver.log" 2>&1 &
pids+=($!)

echo "starting the gateway on :$GATEWAY_PORT (log: $LOGS/gateway.log)"
"$PY" -m service --listen="0.0.0.0:$GATEWAY_PORT" --backend="127.0.0.1:$MODEL_PORT" --labels="$LABELS" \
  >"$LOGS/gateway.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 240); do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "a server exited during start-up; its log:" >&2
      tail -n 20 "$LOGS/modelserver.log" "$LOGS/gateway.log" >&2
      exit 1
    fi
  done
  if "$GRPCURL" -plaintext -max-time 1 "localhost:$GATEWAY_PORT" grpc.health.v1.Health/Check 2>/dev/null \
      | grep -q '"SERVING"'; then
    image=$(realpath "$SHARED/images/chelsea.png")
    cat <<TXT

deeplab-gateway is SERVING on localhost:$GATEWAY_PORT (backend: modelserver on localhost:$MODEL_PORT).

Try it (the classes come back with labels, pixel counts and boxes; the mask as run lengths):

  printf '{"image":"%s","maskFormat":"MASK_FORMAT_RLE","maskSize":"MASK_SIZE_MODEL"}' "\$(base64 -w0 $image)" \\
    | $PWD/$GRPCURL -plaintext -d @ localhost:$GATEWAY_PORT segmentation.v1.SegmentationService/SegmentImage

  $PWD/$GRPCURL -plaintext localhost:$GATEWAY_PORT describe segmentation.v1.SegmentationService

Press Ctrl-C to stop both servers.
TXT
    wait -n "${pids[@]}" || true
    echo "a server exited; see $LOGS/" >&2
    exit 1
  fi
  sleep 0.5
done
echo "the gateway did not become SERVING within 2 minutes; see $LOGS/" >&2
exit 1
