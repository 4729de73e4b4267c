#!/usr/bin/env bash
# deploy/containers/build.sh (`make image`): the gateway's image (deploy/Containerfile) and the local model server's
# (deploy/Containerfile.modelserver), built with podman. BASE_IMAGE chooses their base; by default the official
# python:3.11-slim-bookworm, pinned by digest in the Containerfiles, when a registry answers, else a Debian base made
# here (make-base.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

# The Containerfiles' default base: one image, pinned by digest (name@sha256:...), or no build.
containerfiles=(deploy/Containerfile deploy/Containerfile.modelserver deploy/compose/Containerfile.prometheus)
pinned=$(sed -n 's/^ARG BASE_IMAGE=//p' deploy/Containerfile)
if ! [[ "$pinned" =~ @sha256:[0-9a-f]{64}$ ]]; then
  echo "make image: deploy/Containerfile's default BASE_IMAGE ($pinned) is not pinned by digest (IMAGE@sha256:...)" >&2
  exit 1
fi
for file in "${containerfiles[@]}"; do
  if [ "$(sed -n 's/^ARG BASE_IMAGE=//p' "$file")" != "$pinned" ]; then
    echo "make image: $file's default BASE_IMAGE is not deploy/Containerfile's ($pinned)" >&2
    exit 1
  fi
done

export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/containers/containers.conf}
bash deploy/install-debian-packages.sh "make image" podman buildah runc debootstrap uidmap \
  golang-github-containernetworking-plugin-dnsname >/dev/null
tag=${IMAGE_TAG:-latest}
if [ -z "${BASE_IMAGE:-}" ]; then
  if timeout 20 podman pull -q "$pinned" >/dev/null 2>&1; then
    BASE_IMAGE=$pinned
  else
    # Built here from Debian's signed packages (debootstrap): no registry digest to pin.
    echo "make image: no registry answers for $pinned; a Debian bookworm base made here instead"
    BASE_IMAGE=localhost/deeplab-base:bookworm
    bash deploy/containers/make-base.sh "$BASE_IMAGE"
  fi
elif ! [[ "$BASE_IMAGE" =~ @sha256:[0-9a-f]{64}$ || "$BASE_IMAGE" == localhost/* ]]; then
  echo "make image: warning: BASE_IMAGE=$BASE_IMAGE is not pinned by digest: the images may differ from build to build" >&2
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
