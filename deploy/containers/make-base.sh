#!/usr/bin/env bash
# deploy/containers/make-base.sh [IMAGE]: a Debian bookworm base image with python3 (3.11) and venv, made with
# debootstrap from the Debian mirror this machine's apt uses and imported into podman, for building the project's
# images where no registry is reachable. Does nothing when IMAGE (default localhost/deeplab-base:bookworm) exists.
set -euo pipefail
image=${1:-localhost/deeplab-base:bookworm}
if podman image exists "$image"; then
  exit 0
fi
mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
  grep -oE 'https?://[^ ]+' | grep -v security | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
rootfs=$(mktemp -d /var/tmp/deeplab-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "make-base: debootstrap bookworm from $mirror (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" >/dev/null
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "make-base: $image ($(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=si)B)"
