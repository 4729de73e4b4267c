#!/usr/bin/env bash
# `make run`: the whole chain on this machine. modelserver stands in for tensorflow/serving on port 8500 and
# serves every servable `make export` wrote (deploy/models.config); the gateway listens on 50051, configured by
# flags for the one model `deeplab`, or by CONFIG=FILE (e.g. examples/multi-model.toml, whose backend is
# localhost:8500). Waits until the gateway's health says SERVING, prints a command to try, and on Ctrl-C stops
# the gateway first (it drains its calls), then the model server. The servers run in sessions of their own, so
# that the terminal's Ctrl-C reaches only this script, which stops them in that order.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
GRPCURL=.venv/bin/grpcurl
MODEL_CONFIG=${MODEL_CONFIG:-deploy/models.config}
MODEL_PORT=${MODEL_PORT:-8500}
GATEWAY_PORT=${GATEWAY_PORT:-50051}
METRICS_PORT=${METRICS_PORT:-9464}
# Connect JSON, gRPC-Web and the web page (--http-listen).
HTTP_PORT=${HTTP_PORT:-8080}
SHARED=${SHARED:-../shared}
LABELS=${LABELS:-$SHARED/models/deeplabv3_mnv2_pascal/labels.txt}
CONFIG=${CONFIG:-}
# TRITON=1: NVIDIA Triton (triton/serve.py in triton/.venv) serving MODEL_BASE on TRITON_PORT as well (make run-triton).
TRITON=${TRITON:-}
TRITON_PORT=${TRITON_PORT:-8001}
MODEL_BASE=${MODEL_BASE:-models/deeplab}
LOGS=${LOGS:-.run}
mkdir -p "$LOGS"

gateway_pid=
model_pid=
triton_pid=
stop() {
  # Ignored while stopping: a second Ctrl-C, or make passing a SIGTERM on, must not cut the stop short.
  trap '' INT TERM
  trap - EXIT
  echo
  echo "stopping..."
  for pid in $gateway_pid $triton_pid $model_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  echo "stopped."
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

ports=("$MODEL_PORT" "$GATEWAY_PORT" "$METRICS_PORT" "$HTTP_PORT")
[ -n "$TRITON" ] && ports+=("$TRITON_PORT" "$((TRITON_PORT - 1))")
for port in "${ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use; set MODEL_PORT / GATEWAY_PORT / METRICS_PORT / HTTP_PORT / TRITON_PORT, or" \
      "stop what listens there" >&2
    exit 1
  fi
done

echo "starting modelserver on :$MODEL_PORT with $MODEL_CONFIG (log: $LOGS/modelserver.log)"
setsid "$PY" -m modelserver --port="$MODEL_PORT" --model_config_file="$MODEL_CONFIG" --prefer_tflite_model=true \
  --rest_api_port="${MODEL_REST_PORT:-8501}" --allow_version_labels_for_unavailable_models=true \
  >"$LOGS/modelserver.log" 2>&1 &
model_pid=$!

if [ -n "$TRITON" ]; then
  echo "starting Triton on :$TRITON_PORT with $MODEL_BASE (HTTP :$((TRITON_PORT - 1)); log: $LOGS/triton.log)"
  setsid triton/.venv/bin/python -u triton/serve.py --model-base-path="$MODEL_BASE" --grpc-port="$TRITON_PORT" \
    --http-port="$((TRITON_PORT - 1))" --metrics-port=0 >"$LOGS/triton.log" 2>&1 &
  triton_pid=$!
fi

if [ -n "$CONFIG" ]; then
  echo "starting the gateway on :$GATEWAY_PORT with $CONFIG (log: $LOGS/gateway.log)"
  gateway_flags=(--config="$CONFIG")
else
  echo "starting the gateway on :$GATEWAY_PORT (log: $LOGS/gateway.log)"
  # No profile: the gateway reads the exported servable's serving_scores signature and answers exactly.
  gateway_flags=(--backend="127.0.0.1:$MODEL_PORT" --labels="$LABELS")
fi
setsid "$PY" -m service --listen="0.0.0.0:$GATEWAY_PORT" --metrics-listen="0.0.0.0:$METRICS_PORT" \
  --http-listen="0.0.0.0:$HTTP_PORT" "${gateway_flags[@]}" >"$LOGS/gateway.log" 2>&1 &
gateway_pid=$!

for _ in $(seq 1 240); do
  for pid in $model_pid $triton_pid $gateway_pid; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "a server exited during start-up; its log:" >&2
      tail -n 20 "$LOGS"/*.log >&2
      exit 1
    fi
  done
  if "$GRPCURL" -plaintext -max-time 1 "localhost:$GATEWAY_PORT" grpc.health.v1.Health/Check 2>/dev/null \
      | grep -q '"SERVING"'; then
    image=$(realpath "$SHARED/images/chelsea.png")
    versions_note=""
    if [ -z "$CONFIG" ] && [ "$MODEL_CONFIG" = deploy/models.config ]; then
      versions_note="
The answers name model deeplab, version 2: deploy/models.config serves versions 1 and 2 (the same weights here,
labelled stable and canary for the A/B and shadow examples), and a call that names no version gets the latest, as
from TF Serving. \"model\":{\"versionLabel\":\"stable\"} in the request asks for version 1.
"
    fi
    cat <<TXT

deeplab-gateway is SERVING on localhost:$GATEWAY_PORT (backend: modelserver on localhost:$MODEL_PORT${TRITON:+,
Triton on localhost:$TRITON_PORT}; metrics: http://localhost:$METRICS_PORT/metrics).

Open http://localhost:$HTTP_PORT/ in a browser to segment a photo of your own.

Try it (the classes come back with labels, pixel counts and boxes, and the stages' times; ask for
"maskFormat":"MASK_FORMAT_PNG" or "MASK_FORMAT_RLE" to get the mask as well):

  printf '{"image":"%s","maskFormat":"MASK_FORMAT_NONE"}' "\$(base64 -w0 $image)" \\
    | $PWD/$GRPCURL -plaintext -emit-defaults -d @ localhost:$GATEWAY_PORT segmentation.v1.SegmentationService/SegmentImage

  $PWD/$GRPCURL -plaintext localhost:$GATEWAY_PORT segmentation.v1.SegmentationService/ListModels
${versions_note}
The same over HTTP with curl (Connect's JSON):

  printf '{"image":"%s"}' "\$(base64 -w0 $image)" \\
    | curl -s localhost:$HTTP_PORT/segmentation.v1.SegmentationService/SegmentImage -H 'Content-Type: application/json' --data-binary @-

Press Ctrl-C to stop the servers.
TXT
    wait -n $model_pid $triton_pid $gateway_pid || true
    echo "a server exited; see $LOGS/" >&2
    exit 1
  fi
  sleep 0.5
done
echo "the gateway did not become SERVING within 2 minutes; see $LOGS/" >&2
exit 1
