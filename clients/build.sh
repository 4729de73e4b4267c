#!/usr/bin/env bash
# Generates the Node, Java and Go stubs from protos/ (clients/buf.gen.yaml), then compiles the Java, Scala and Go
# examples against them. The stubs are not committed; they are made fresh from the protos whenever the protos, the
# examples or this build changed since the last build, and the build is skipped otherwise (test processes running side
# by side each ask for it; one builds at a time).
set -euo pipefail
cd "$(dirname "$0")"
source ./classpath.sh

exec 9<build.sh
flock 9
stamp=.build-stamp
# The inputs: the protos, the examples, this build, and the compilers and jars it uses (an upgrade builds again).
inputs="$({
  find ../protos -name '*.proto' -type f
  find buf.gen.yaml build.sh classpath.sh java/src scala/src go/cmd node/package-lock.json -type f
} | LC_ALL=C sort | xargs sha256sum
  for tool in protoc grpc_java_plugin javac scalac go; do stat -L -c '%n %s %Y' "$(command -v "$tool")"; done
  echo "$GRPC_JAVA_CLASSPATH"
)"
inputs="$(sha256sum <<<"$inputs" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$inputs" && -x go/bin/segment && -d java/build && -d scala/build &&
  -d node/gen ]]; then
  echo "clients: up to date (clients/{node,java,go}/gen, clients/java/build, clients/scala/build, clients/go/bin/segment)"
  exit 0
fi
rm -f "$stamp"

# From the repository root: the template's paths are relative to where buf runs.
(cd .. && "${BUF:-.venv/bin/buf}" generate --template clients/buf.gen.yaml)

rm -rf java/build scala/build go/bin
mkdir -p java/build scala/build go/bin
javac -nowarn -encoding UTF-8 -cp "$GRPC_JAVA_CLASSPATH" -d java/build $(find java/gen java/src -name '*.java')
scalac -nowarn -cp "java/build:$GRPC_JAVA_CLASSPATH" -d scala/build scala/src/*.scala

# GOPATH mode against Debian's grpc-go and protobuf sources: no module proxy is reachable here.
gopath=$(mktemp -d)
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src/github.com/deeplab-gateway"
ln -s "$(cd .. && pwd)" "$gopath/src/github.com/deeplab-gateway/deeplab-gateway"
(cd "$gopath/src/github.com/deeplab-gateway/deeplab-gateway" &&
  GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="${GOCACHE:-$gopath/cache}" \
    go build -o "$OLDPWD/go/bin/segment" ./clients/go/cmd/segment)
echo "$inputs" >"$stamp"
echo "generated clients/{node,java,go}/gen; built clients/java/build, clients/scala/build, clients/go/bin/segment"
