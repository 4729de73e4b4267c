#!/usr/bin/env bash
# Installs what the non-Python clients and `make clients` need, from Debian's packages and the npm registry:
# protoc and grpc-java's plugin, Debian's grpc-java/protobuf/netty jars, Scala, Go with Debian's grpc-go
# sources, protoc-gen-go(-grpc), and the Node example's packages (protoc-gen-es, connect-node).
# Idempotent: apt is only asked when a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  protobuf-compiler protobuf-compiler-grpc-java-plugin
  libgrpc-java libprotobuf-java libnetty-java libperfmark-java libgeronimo-annotation-1.3-spec-java
  openjdk-17-jdk-headless scala
  golang-go protoc-gen-go protoc-gen-go-grpc
  golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
)
bash deploy/install-debian-packages.sh install-toolchains "${packages[@]}"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-toolchains: node and npm are needed for the Node client (Debian: nodejs npm)" >&2
  exit 1
fi
if [ ! -x clients/node/node_modules/.bin/protoc-gen-es ] || [ clients/node/package-lock.json -nt clients/node/node_modules ]; then
  (cd clients/node && npm ci --no-audit --no-fund --loglevel=error)
fi
