#!/usr/bin/env bash
# Runs one language's example client: clients/run.sh node|java|scala|go [--server host:port] IMAGE
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/classpath.sh"
language=$1
shift
case "$language" in
  node) exec node "$here/node/segment.mjs" "$@" ;;
  java) exec java -cp "$here/java/build:$GRPC_JAVA_CLASSPATH" io.deeplabgateway.example.SegmentImage "$@" ;;
  scala) exec scala -cp "$here/scala/build:$here/java/build:$GRPC_JAVA_CLASSPATH" \
    io.deeplabgateway.example.scala.SegmentImage "$@" ;;
  go)
    # Go's flag package wants flags first; the other examples take them anywhere.
    exec "$here/go/bin/segment" "$@" ;;
  *) echo "usage: clients/run.sh node|java|scala|go [--server host:port] IMAGE" >&2; exit 2 ;;
esac
