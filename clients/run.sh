#!/usr/bin/env bash
# Runs one language's example client: clients/run.sh node|java|scala|go [--server host:port] IMAGE
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/classpath.sh"
usage="usage: clients/run.sh node|java|scala|go [--server host:port] IMAGE"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
language=$1
shift
# Held (shared) while the example runs, by the program exec'd below: a build (clients/build.sh, which holds it
# alone) waits rather than replace the files the example is running from.
exec 9<"$here/build.sh"
flock -s 9
# Stubs and builds are not committed: say how to make them rather than fail on a missing module or class.
need() {
  [ -e "$here/$1" ] || { echo "clients/run.sh: clients/$1 is missing: run 'make clients' first" >&2; exit 2; }
}
case "$language" in
  node) need node/gen; exec node "$here/node/segment.mjs" "$@" ;;
  java) need java/build; exec java -cp "$here/java/build:$GRPC_JAVA_CLASSPATH" \
    io.deeplabgateway.example.SegmentImage "$@" ;;
  scala) need scala/build; exec scala -cp "$here/scala/build:$here/java/build:$GRPC_JAVA_CLASSPATH" \
    io.deeplabgateway.example.scala.SegmentImage "$@" ;;
  go) need go/bin/segment; exec "$here/go/bin/segment" "$@" ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
