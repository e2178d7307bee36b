#!/usr/bin/env bash
# Rebuilds the seed corpus from the fixtures, the policy files and the spec's test vectors.
# Run once, then minimise: `scripts/fuzz.sh --minimise`. Needs a built `riskhook` binary
# (cargo build -p riskhook) for signing the `verify` seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
riskhook=${RISKHOOK_BIN:-target/debug/riskhook}
export RISKHOOK_DIDIT_SECRET=tno2NTeRC1ZK3sBOYlBJDyEzBVENl3pQ1AcZyAW0xnQ
seeds=fuzz/seeds
rm -rf "$seeds" && mkdir -p "$seeds"/{canonical,payload,policy,verify}

for f in fixtures/didit/*.json; do
    name=$(basename "$f" .json)
    cp "$f" "$seeds/canonical/$name"
    cp "$f" "$seeds/payload/$name"
    # One framed delivery per scheme (see fuzz/src/lib.rs): flags, X-Timestamp, X-Signature,
    # X-Signature-V2, X-Signature-Simple, body; U+0001 marks an absent header.
    "$riskhook" sign "$f" --json | python3 -c '
import json, sys
h = json.load(sys.stdin)
body = open(sys.argv[1], "rb").read()
name, out = sys.argv[2], sys.argv[3]
absent = "\x01"
variants = {
    "all": ("2", h["X-Timestamp"], h["X-Signature"], h["X-Signature-V2"], h["X-Signature-Simple"]),
    "v2": ("2", h["X-Timestamp"], absent, h["X-Signature-V2"], absent),
    "simple": ("3", h["X-Timestamp"], absent, absent, h["X-Signature-Simple"]),
}
for tag, fields in variants.items():
    with open(f"{out}/{name}-{tag}", "wb") as w:
        w.write("\n".join(fields).encode() + b"\n" + body)
' "$f" "$name" "$seeds/verify"
done

# The spec's vectors (canonical numbers, non-ASCII, nesting) as canonicaliser seeds.
printf '%s' '{"a":98.0,"b":1e-05,"c":1.1812083616449413e+38,"d":36.8421052631579,"e":-0.0,"f":0.00025,"g":1E2}' \
    > "$seeds/canonical/vector-c"
printf '%s' '{"k":"Jos\u00e9 \ud83d\ude00","\u0000":[1,2,{"z":null,"a":true}],"9":1,"10":2,"big":1180591620717411303424}' \
    > "$seeds/canonical/escapes-and-keys"

cp crates/riskhook-core/policy/default.toml "$seeds/policy/default.toml"
printf 'name = "t"\n[thresholds]\nreview = 30\nfreeze = 70\n\n[[rules]]\nid = "a"\nwhen = "aml.sanctions_hits > 0 && face.match_score < 50.0"\npoints = 10\ndecision = "review"\nreason = "r"\n' \
    > "$seeds/policy/small.toml"
echo "seeds written to $seeds"
