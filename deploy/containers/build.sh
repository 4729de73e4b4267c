#!/usr/bin/env bash
# deploy/containers/build.sh (`make image`): the gateway's image (deploy/Containerfile) and the local model server's
# (deploy/Containerfile.modelserver), built with podman. BASE_IMAGE chooses their base; by default the official
# python:3.11-slim-bookworm when a registry answers, else a Debian base made here (make-base.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/containers/containers.conf}
bash deploy/install-debian-packages.sh "make image" podman buildah runc debootstrap uidmap \
  golang-github-containernetworking-plugin-dnsname >/dev/null
tag=${IMAGE_TAG:-latest}
if [ -z "${BASE_IMAGE:-}" ]; then
  if timeout 20 podman pull -q docker.io/library/python:3.11-slim-bookworm >/dev/null 2>&1; then
    BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm
  else
    BASE_IMAGE=localhost/deeplab-base:bookworm
    bash deploy/containers/make-base.sh "$BASE_IMAGE"
  fi
fi
build=(podman build --format docker --network host --build-arg "BASE_IMAGE=$BASE_IMAGE")
# Builds behind a TLS-intercepting proxy need its CA to reach PyPI: the host's trust store, as a build secret.
for bundle in ${PIP_CERT:-} /etc/ssl/certs/ca-certificates.crt; do
  if [ -s "$bundle" ]; then build+=(--secret "id=ca-bundle,src=$bundle"); break; fi
done
for name in gateway modelserver; do
  file=deploy/Containerfile
  [ "$name" = gateway ] || file=deploy/Containerfile.$name
  echo "== deeplab-$name:$tag from $BASE_IMAGE"
  "${build[@]}" -f "$file" -t "localhost/deeplab-$name:$tag" .
done
# Prometheus from Debian's package for compose.local.yaml, where prom/prometheus cannot be pulled.
podman build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" -f deploy/compose/Containerfile.prometheus \
  -t "localhost/deeplab-prometheus:$tag" deploy/compose
for name in gateway modelserver; do
  size=$(podman image inspect --format '{{.Size}}' "localhost/deeplab-$name:$tag")
  echo "localhost/deeplab-$name:$tag: $(numfmt --to=si "$size")B"
done
