#!/usr/bin/env bash
# Regenerates the botocore cases: requests signed by botocore's stock SigV4Auth, as sent.
# Needs a Python with botocore (python -m venv v && v/bin/pip install botocore); set PYTHON.
# Each case gets <case>.sreq (the signed request on the wire), .creq, .sts and .authz.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
SIGN="$PYTHON ../../../../scripts/botocore_sign.py"
COMMON=(--date 20250115T093000Z --access-key-id AbCdEf123456
        --secret kw_test_AbCdEf123456_q0uBbV2mZ9yTfJ4wXk7sLr1pHc3dGe8nA5vQ0zW6oIu
        --region us-east-1 --service keyward)

gen() {
  local case=$1; shift
  mkdir -p "$case"
  $SIGN "$@" "${COMMON[@]}" --format req > "$case/$case.sreq"
  $SIGN "$@" "${COMMON[@]}" --format json > "$case/$case.json"
  "$PYTHON" - "$case" <<'PY'
import json, sys
case = sys.argv[1]
d = json.load(open(f"{case}/{case}.json"))
open(f"{case}/{case}.creq", "w").write(d["canonical_request"])
open(f"{case}/{case}.sts", "w").write(d["string_to_sign"])
open(f"{case}/{case}.authz", "w").write(d["headers_set"]["Authorization"])
PY
  rm "$case/$case.json"
  printf '%q ' "$@" > "$case/$case.args"
}

gen get-query --method GET --url https://api.example.com/v1/reports \
  --param year=2025 --param 'q=a b+c~é' --param empty= -H 'Accept: application/json'
gen post-json --method POST --url https://api.example.com/v1/reports \
  -H 'Content-Type: application/json' -H 'X-Keyward-Nonce: 7f3c9a0e' \
  --data '{"name":"q3 report","amount":12.5,"tags":["a","b"]}'
gen put-encoded-path --method PUT \
  --url 'https://api.example.com:8443/v1/files/my%20file%2Bv2.txt?overwrite=true&tag=x%2Fy' \
  -H 'Content-Type: text/plain; charset=utf-8' -H 'X-Meta:   spaced    out  ' \
  --data 'hello, world'
