#!/usr/bin/env bash
# Generates the Node, Java and Go stubs from protos/ (clients/buf.gen.yaml), then compiles the Java, Scala and Go
# examples against them. The stubs are not committed, so every build makes them fresh from the protos.
set -euo pipefail
cd "$(dirname "$0")"
source ./classpath.sh

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
echo "generated clients/{node,java,go}/gen; built clients/java/build, clients/scala/build, clients/go/bin/segment"
