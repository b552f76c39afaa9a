#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# What the keyless `signature` gate adds to a promotion (issue 26: at most 100 ms on loopback),
# side by side in one run, alternating (ABBA), against olareg (the OCI 1.1 referrers API, in
# memory) on 127.0.0.1:
#   ungated  - `cargo gitops build --ref refs/tags/v1.0.0 --retag-with builtin` of a release:
#              production retags what staging built, with `gates = {}` (no gate);
#   keyless  - the same promotion with `gates = { signature = { trusted-root =
#              "keys/trusted_root.json" } }` and the default identity (this repository's own
#              GitHub workflows, from its origin on github.com): the referrers read, the
#              sigstore bundle fetched, its certificate chained to the trusted root, its
#              identity and issuer matched, its log entry (signed entry timestamp, inclusion
#              proof, signed checkpoint, body) and its envelope checked, offline;
#   cosign   - `cosign verify --trusted-root keys/trusted_root.json
#              --certificate-identity-regexp ... --certificate-oidc-issuer ...
#              --insecure-ignore-sct=true` of the same digest: the same check, by cosign.
# The fixture is that of tests/it/keyless.rs, made here with openssl and python3's standard
# library: a test certificate authority (P-384 root and intermediate), a Fulcio-like leaf
# (P-256, SAN URI of the release workflow, OIDC issuer extension 1.3.6.1.4.1.57264.1.8), a
# test transparency log (P-256) that signs the entry's timestamp and a checkpoint of a tree of
# one, a Sigstore trusted_root.json listing both, and a sigstore bundle v0.3 (DSSE, an in-toto
# statement of the image's digest) attached to the image as an OCI referrer. The staged image
# is pushed directly (a config and a manifest, tags commit-<sha> and stg-latest), as the test
# does. Both promotion variants read the same repository and commit, each through a
# gitops.toml of its own (`--config`), so only the gate differs. Each promotion run writes the
# same tags again (a retag of what is there already).
# Usage: bench/keyless-gate.sh   Knobs (defaults): RUNS=20 (per variant) KEEP=0
#   OUT=bench/keyless-gate-results.md  GITOPS_BIN= (default: cargo build --release)
#   BIN_LABEL= (what the results call the binary; default: GITOPS_BIN, or "release build")
# Needs cargo, olareg and cosign (.ci/install-tools), curl, git, python3, openssl.
set -euo pipefail
RUNS=${RUNS:-20}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$root/bench/keyless-gate-results.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
PATH="$HOME/.cache/cargo-gitops-tools/bin:$PATH"
for tool in cargo olareg cosign curl git python3 openssl timeout; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done
work=$(mktemp -d /tmp/bench-keyless.XXXXXX)
# shellcheck source=sbs-lib.sh
source "$root/bench/sbs-lib.sh"
trap sbs_cleanup EXIT
unset GITHUB_ACTIONS GITHUB_REF GITHUB_SHA GITHUB_OUTPUT GITHUB_STEP_SUMMARY GITOPS_REGISTRY_USER GITOPS_REGISTRY_PASSWORD SOURCE_DATE_EPOCH GITOPS_SIGNING_KEY
export DOCKER_CONFIG=$work/no-docker-config
mkdir -p "$DOCKER_CONFIG" && echo '{}' >"$DOCKER_CONFIG/config.json"

# Taken before the build: what it compiles (a tree edited meanwhile says so).
label="$(git -C "$root" rev-parse --short HEAD), source of $(git -C "$root" log -1 --format=%h -- cargo-gitops Cargo.toml Cargo.lock)"
if [[ -z ${GITOPS_BIN:-} && -n $(git -C "$root" status --porcelain -- cargo-gitops Cargo.toml Cargo.lock) ]]; then
  label+=" + uncommitted changes"
fi
if [[ -n ${GITOPS_BIN:-} ]]; then
  bin=$GITOPS_BIN
else
  say "building cargo-gitops (release) at $(git -C "$root" rev-parse --short HEAD)"
  cargo build --quiet --release -p cargo-gitops --manifest-path "$root/Cargo.toml"
  bin=$CARGO_TARGET_DIR/release/cargo-gitops
fi
# olareg's binary does not know its version (built in its module tree): the one .ci/tools pins.
olareg_version=$(awk '$1 == "olareg" {sub(/.*@/, "", $2); print $2}' "$root/.ci/tools" 2>/dev/null || true)
cosign_version=$(cosign version 2>/dev/null | awk '/^GitVersion/{print $2}' || true)

# olareg in memory on a free port; its requests (`-v trace`) go to its log.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$work/olareg.log
say "starting olareg on 127.0.0.1:$port"
(cd "$work" && exec olareg serve --store-type mem --addr 127.0.0.1 --port "$port" -v trace --api-delete) \
  </dev/null >"$log" 2>&1 &
registry_pids+=($!)
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && break
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" || { echo "olareg did not start" >&2; exit 1; }
host=127.0.0.1:$port
requests() { grep -c 'msg=ServeHTTP' "$log" || true; }

# The repository: a Dockerfile, one commit on main tagged v1.0.0, an origin on github.com.
repo=$work/repo
mkdir -p "$repo/keys"
printf 'FROM scratch\n' >"$repo/Dockerfile"
(cd "$repo" && git init -q -b main && git add -A &&
  GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z \
    git -c user.name=b -c user.email=b@b -c commit.gpgsign=false commit -qm 'the app' &&
  git remote add origin https://github.com/acme/app.git && git tag v1.0.0)
sha=$(git -C "$repo" rev-parse HEAD)
config() { # dir production-gates
  mkdir -p "$1"
  cat >"$1/gitops.toml" <<TOML
registry = "$host/acme"
image = "app"
builder = "podman"
dockerfile = "$repo/Dockerfile"
context = "$repo"

[[environments]]
name = "production"
gates = $2

[[environments]]
name = "staging"
TOML
}
config "$work/ungated" '{}'
config "$work/keyless" "{ signature = { trusted-root = \"$repo/keys/trusted_root.json\" } }"
# A check of the check: the same root, but another identity expected.
config "$work/other" "{ signature = { identity = 'https://github\\.com/evil/.+', trusted-root = \"$repo/keys/trusted_root.json\" } }"

say "staging image, test CA, test log, trusted root, keyless bundle attached as a referrer"
python3 - "$host" "$sha" "$repo/keys" >"$work/digest" <<'PY'
import base64, hashlib, json, subprocess, sys, time, urllib.request

host, sha, keys = sys.argv[1:4]
name = "acme/app"
ISSUER = "https://token.actions.githubusercontent.com"
IDENTITY = "https://github.com/acme/app/.github/workflows/gitops-pipeline.yml@refs/tags/v1.0.0"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def b64(data):
    return base64.b64encode(data).decode()


def sha256(data):
    return hashlib.sha256(data).digest()


def canonical(value):  # serde_json::to_vec of json!: sorted keys, no spaces
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def openssl(*args, stdin=None):
    out = subprocess.run(["openssl", *args], cwd=keys, input=stdin, capture_output=True)
    if out.returncode != 0:
        sys.exit(f"openssl {args}: {out.stderr.decode()}")
    return out.stdout


def read(path):
    with open(f"{keys}/{path}", "rb") as f:
        return f.read()


def write(path, data):
    with open(f"{keys}/{path}", "wb") as f:
        f.write(data)


def key(path, curve):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{curve}", "-out", path)


def der(pem):
    openssl("x509", "-in", pem, "-outform", "DER", "-out", f"{pem}.der")
    return read(f"{pem}.der")


def sign(key_path, message):  # DER ECDSA over SHA-256
    return openssl("dgst", "-sha256", "-sign", key_path, stdin=message)


def request(method, url, data=b"", content_type=None):
    req = urllib.request.Request(url, data=data, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req) as response:
        return response.status, response.headers


def put_blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    base = f"http://{host}"
    status, headers = request("POST", f"{base}/v2/{name}/blobs/uploads/")
    assert status == 202, status
    location = headers["Location"]
    if not location.startswith("http"):
        location = base + location
    separator = "&" if "?" in location else "?"
    status, _ = request("PUT", f"{location}{separator}digest={digest}", data, "application/octet-stream")
    assert status == 201, status
    return digest


def put_manifest(reference, data, media_type):
    status, _ = request("PUT", f"http://{host}/v2/{name}/manifests/{reference}", data, media_type)
    assert status == 201, status


# The staged image of the commit, as tests/it/affected.rs's push_image stores it.
config = (
    '{"architecture":"amd64","os":"linux","config":{"Labels":{"org.opencontainers.image.revision":"'
    + sha
    + '"}},"rootfs":{"type":"layers","diff_ids":[]}}'
).encode()
manifest = (
    '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"'
    + put_blob(config)
    + f'","size":{len(config)}}},"layers":[]}}'
).encode()
for tag in (f"commit-{sha}", "stg-latest"):
    put_manifest(tag, manifest, OCI_MANIFEST)
digest = "sha256:" + hashlib.sha256(manifest).hexdigest()

# The certificate authority: a self-signed root and an intermediate it issued, both P-384.
write("ca.ext", b"basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
key("root.key", "P-384")
openssl("req", "-x509", "-new", "-key", "root.key", "-sha384", "-subj", "/O=trusted/CN=trusted root",
        "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "root.pem")
key("mid.key", "P-384")
openssl("req", "-new", "-key", "mid.key", "-subj", "/O=trusted/CN=trusted intermediate", "-out", "mid.csr")
openssl("x509", "-req", "-in", "mid.csr", "-sha384", "-CA", "root.pem", "-CAkey", "root.key",
        "-CAcreateserial", "-days", "30", "-extfile", "ca.ext", "-out", "mid.pem")
mid, root = der("mid.pem"), der("root.pem")

# The Fulcio-like leaf: the release workflow's identity, GitHub's issuer, valid a day.
key("leaf.key", "P-256")
write("leaf.ext", (
    f"subjectAltName=critical,URI:{IDENTITY}\nkeyUsage=critical,digitalSignature\n"
    f"extendedKeyUsage=codeSigning\n1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:{ISSUER}\n"
).encode())
openssl("req", "-new", "-key", "leaf.key", "-subj", "/O=sigstore.dev", "-out", "leaf.csr")
openssl("x509", "-req", "-in", "leaf.csr", "-sha384", "-CA", "mid.pem", "-CAkey", "mid.key",
        "-CAcreateserial", "-days", "1", "-extfile", "leaf.ext", "-out", "leaf.pem")
leaf = der("leaf.pem")
leaf_pem = "-----BEGIN CERTIFICATE-----\n"
text = b64(leaf)
for i in range(0, len(text), 64):
    leaf_pem += text[i:i + 64] + "\n"
leaf_pem += "-----END CERTIFICATE-----\n"

# The transparency log: its P-256 key; its id is the SHA-256 of the public key's DER.
key("log.key", "P-256")
openssl("pkey", "-in", "log.key", "-pubout", "-outform", "DER", "-out", "log.pub.der")
log_der = read("log.pub.der")
log_id = sha256(log_der)

write("trusted_root.json", json.dumps({
    "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    "tlogs": [{
        "baseUrl": "https://log.test",
        "hashAlgorithm": "SHA2_256",
        "publicKey": {"rawBytes": b64(log_der), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                      "validFor": {"start": "2020-01-01T00:00:00Z"}},
        "logId": {"keyId": b64(log_id)},
    }],
    "certificateAuthorities": [{
        "subject": {"organization": "trusted", "commonName": "trusted"},
        "uri": "https://ca.test",
        "certChain": {"certificates": [{"rawBytes": b64(mid)}, {"rawBytes": b64(root)}]},
        "validFor": {"start": "2020-01-01T00:00:00Z"},
    }],
    "ctlogs": [],
    "timestampAuthorities": [],
}, indent=2).encode())

# The envelope: an in-toto statement of the image's digest, signed (DSSE PAE) by the leaf.
payload = canonical({
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"digest": {"sha256": digest.removeprefix("sha256:")}}],
    "predicateType": "https://sigstore.dev/cosign/sign/v1",
    "predicate": {},
})
payload_type = "application/vnd.in-toto+json"
pae = f"DSSEv1 {len(payload_type)} {payload_type} {len(payload)} ".encode() + payload
envelope_signature = b64(sign("leaf.key", pae))
envelope = {"payload": b64(payload), "payloadType": payload_type, "signatures": [{"sig": envelope_signature}]}
body = canonical({
    "apiVersion": "0.0.1",
    "kind": "dsse",
    "spec": {
        "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(canonical(envelope)).hexdigest()},
        "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
        "signatures": [{"signature": envelope_signature, "verifier": b64(leaf_pem.encode())}],
    },
})

# The log entry of the body at index 0 of a tree of one: promise, inclusion proof, checkpoint.
integrated = int(time.time())
body_b64 = b64(body)
promise = (f'{{"body":"{body_b64}","integratedTime":{integrated},'
           f'"logID":"{log_id.hex()}","logIndex":0}}').encode()
tree_root = sha256(b"\x00" + body)
note = f"test-log - 1\n1\n{b64(tree_root)}\n"
checkpoint = f"{note}\n\u2014 test-log {b64(log_id[:4] + sign('log.key', note.encode()))}\n"
entry = {
    "logIndex": "0",
    "logId": {"keyId": b64(log_id)},
    "kindVersion": {"kind": "dsse", "version": "0.0.1"},
    "integratedTime": str(integrated),
    "inclusionPromise": {"signedEntryTimestamp": b64(sign("log.key", promise))},
    "inclusionProof": {"logIndex": "0", "rootHash": b64(tree_root), "treeSize": "1", "hashes": [],
                       "checkpoint": {"envelope": checkpoint}},
    "canonicalizedBody": body_b64,
}
bundle = canonical({
    "mediaType": BUNDLE,
    "verificationMaterial": {"certificate": {"rawBytes": b64(leaf)}, "tlogEntries": [entry]},
    "dsseEnvelope": envelope,
})

# Attached as cosign v3 does: an OCI artifact whose subject is the image.
artifact = canonical({
    "schemaVersion": 2,
    "mediaType": OCI_MANIFEST,
    "artifactType": BUNDLE,
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": put_blob(b"{}"), "size": 2},
    "layers": [{"mediaType": BUNDLE, "digest": put_blob(bundle), "size": len(bundle)}],
    "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)},
    "annotations": {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
    },
})
put_manifest("sha256:" + hashlib.sha256(artifact).hexdigest(), artifact, OCI_MANIFEST)
print(digest)
PY
digest=$(cat "$work/digest")

promote() { # variant
  (cd "$repo" && "$bin" build -q --config "$work/$1/gitops.toml" --ref refs/tags/v1.0.0 --retag-with builtin --format json)
}
cosign_verify() { # identity-regexp
  cosign verify --trusted-root "$repo/keys/trusted_root.json" \
    --certificate-identity-regexp "${1:-^https://github\.com/acme/app/\.github/workflows/.+$}" \
    --certificate-oidc-issuer https://token.actions.githubusercontent.com \
    --insecure-ignore-sct=true --allow-http-registry=true "$host/acme/app@$digest" >/dev/null 2>&1
}
# Each variant once, checked: the keyless gate passes, cosign verifies; and both refuse
# another identity (so what is timed is a real check).
promote ungated >"$work/ungated.json"
promote keyless >"$work/keyless.json"
python3 - "$work/ungated.json" "$work/keyless.json" "$digest" <<'PY'
import json, sys
ungated, keyless = (json.load(open(p)) for p in sys.argv[1:3])
assert ungated["digest"] == keyless["digest"] == sys.argv[3], (ungated["digest"], keyless["digest"])
assert ungated.get("gates", []) == [], ungated.get("gates")
outcomes = [(g["gate"], g["outcome"]) for g in keyless["gates"]]
assert outcomes == [("signature", "passed")], outcomes
print("gate:", keyless["gates"][0].get("detail", keyless["gates"][0]), file=sys.stderr)
PY
if promote other >"$work/other.json" 2>"$work/other.err"; then
  echo "the gate passed a signature of another identity" >&2; exit 1
fi
grep -q 'which does not match' "$work/other.err" || { cat "$work/other.err" >&2; exit 1; }
cosign_verify || { echo "cosign verify failed" >&2; exit 1; }
if cosign_verify '^https://github\.com/evil/.+$'; then
  echo "cosign verified a signature of another identity" >&2; exit 1
fi

before=$(requests)
promote keyless >/dev/null
keyless_requests=$(($(requests) - before))
before=$(requests)
promote ungated >/dev/null
ungated_requests=$(($(requests) - before))
before=$(requests)
cosign_verify
cosign_requests=$(($(requests) - before))

load=$(cut -d' ' -f1-3 /proc/loadavg)
say "timing $RUNS runs of each, ABBA (load average $load)"
export -f promote cosign_verify
export bin work repo host digest
python3 - "$RUNS" "$work/times.json" <<'PY'
import json, subprocess, sys, time
runs, out = int(sys.argv[1]), sys.argv[2]
variants = {
    "ungated": ["bash", "-c", "promote ungated >/dev/null"],
    "keyless": ["bash", "-c", "promote keyless >/dev/null"],
    "cosign": ["bash", "-c", "cosign_verify"],
}
order = list(variants)
times = {name: [] for name in variants}
for i in range(runs):
    for name in (order if i % 2 == 0 else list(reversed(order))):
        start = time.monotonic()
        subprocess.run(variants[name], check=True)
        times[name].append((time.monotonic() - start) * 1000)
json.dump(times, open(out, "w"))
PY
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$work/times.json" "$OUT" "$label" "$RUNS" "$keyless_requests" "$ungated_requests" "$cosign_requests" \
  "${BIN_LABEL:-${GITOPS_BIN:-release build}}" "$load" "$load_end" "$(machine)" "${olareg_version:-?}" "${cosign_version:-?}" <<'PY'
import json, statistics, sys
(times, out, label, runs, keyless_requests, ungated_requests, cosign_requests, binary, load,
 load_end, machine, olareg, cosign) = sys.argv[1:14]
times = json.load(open(times))
med = {k: statistics.median(v) for k, v in times.items()}
added = med["keyless"] - med["ungated"]
span = lambda k: f"{min(times[k]):.1f} – {max(times[k]):.1f}"
lines = [
    f"Run of `bench/keyless-gate.sh` at {label}: RUNS={runs} per variant, alternating (ABBA),",
    f"olareg {olareg} (in memory) on 127.0.0.1, cosign {cosign}, binary {binary}; machine: {machine},",
    f"shared (load average at the start: {load}; at the end: {load_end}).",
    "",
    "| variant | median ms | min – max ms | registry requests |",
    "| --- | --: | --: | --: |",
    f"| ungated promotion (`gates = {{}}`) | {med['ungated']:.1f} | {span('ungated')} | {ungated_requests} |",
    f"| keyless-gated promotion (`signature = {{ trusted-root = ... }}`) | {med['keyless']:.1f} | {span('keyless')} | {keyless_requests} |",
    f"| `cosign verify --trusted-root` of the same digest | {med['cosign']:.1f} | {span('cosign')} | {cosign_requests} |",
    "",
    f"The keyless gate added **{added:.1f} ms** to the median promotion (target: at most 100 ms: "
    + ("met" if added <= 100 else "**not met**")
    + f"); the gated promotion is {med['keyless'] / med['ungated']:.2f}x the ungated one."
    + f" `cosign verify --trusted-root` doing the same check takes {med['cosign']:.1f} ms,"
    + f" {med['cosign'] / med['ungated']:.2f}x the whole ungated promotion.",
    "",
]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
