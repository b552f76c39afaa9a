#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# What promotion gates add to a promotion (issue 26: at most 100 ms on loopback), side by
# side in one run, alternating (ABBA), against Debian's docker-registry on 127.0.0.1:
#   ungated  - `cargo gitops build` of a v1.0.0 tag: production retags what staging built,
#              with `gates = {}` (no gate);
#   gated    - the same promotion with `gates = { previous = "staging", soak = "30m",
#              signature = { key = "signing.pub" }, provenance = true }`: the staging tags
#              listed, two HEADs, the referrers read, the signature bundle and the provenance
#              statement fetched and checked;
#   cosign   - `cosign verify --key signing.pub --insecure-ignore-tlog=true` of the same
#              digest: the signature check alone, by cosign.
# The staging image is built once by `cargo gitops build --build-with podman` (FROM scratch
# and one file), signed with the key and its provenance attached; its staging tag carries a
# timestamp two hours old. Both promotion variants read the same repository and commit, each
# through a gitops.toml of its own (`--config`), so only the gates differ. Each promotion run
# writes the same tags again (a retag of what is there already).
# Usage: bench/gates.sh   Knobs (defaults): RUNS=20 (per variant) KEEP=0
#   OUT=bench/gates-results.md  GITOPS_BIN= (default: cargo build --release)
# Needs cargo, docker-registry, podman, cosign (.ci/install-tools cosign), curl, git,
# python3, openssl.
set -euo pipefail
RUNS=${RUNS:-20}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$root/bench/gates-results.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
PATH="$HOME/.cache/cargo-gitops-tools/bin:$PATH"
for tool in cargo docker-registry podman cosign curl git python3 openssl timeout; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done
work=$(mktemp -d /tmp/bench-gates.XXXXXX)
# shellcheck source=sbs-lib.sh
source "$root/bench/sbs-lib.sh"
trap sbs_cleanup EXIT
unset GITHUB_ACTIONS GITHUB_REF GITHUB_SHA GITHUB_OUTPUT GITHUB_STEP_SUMMARY GITOPS_REGISTRY_USER GITOPS_REGISTRY_PASSWORD SOURCE_DATE_EPOCH GITOPS_SIGNING_KEY
export DOCKER_CONFIG=$work/no-docker-config STORAGE_DRIVER=vfs
mkdir -p "$DOCKER_CONFIG" && echo '{}' >"$DOCKER_CONFIG/config.json" && echo '{}' >"$work/auth.json"
export CONTAINERS_STORAGE_CONF=$work/storage.conf
printf '[storage]\ndriver = "vfs"\nrunroot = "%s/run"\ngraphroot = "%s/graph"\n' "$work" "$work" >"$CONTAINERS_STORAGE_CONF"

if [[ -n ${GITOPS_BIN:-} ]]; then
  bin=$GITOPS_BIN
else
  say "building cargo-gitops (release) at $(git -C "$root" rev-parse --short HEAD)"
  cargo build --quiet --release -p cargo-gitops --manifest-path "$root/Cargo.toml"
  bin=$CARGO_TARGET_DIR/release/cargo-gitops
fi
label="$(git -C "$root" rev-parse --short HEAD), source of $(git -C "$root" log -1 --format=%h -- cargo-gitops Cargo.toml Cargo.lock)"
start_registry dst
host=$registry_host
# podman's logins (none); set only now, since docker-registry reads REGISTRY_* as its settings.
export REGISTRY_AUTH_FILE=$work/auth.json

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/signing.pem" 2>/dev/null
openssl pkey -in "$work/signing.pem" -pubout -out "$work/signing.pub" 2>/dev/null

# The repository: a Dockerfile, one file, one commit on main, an origin remote.
repo=$work/repo
mkdir -p "$repo"
printf 'promoted\n' >"$repo/hello.txt"
printf 'FROM scratch\nCOPY hello.txt /hello.txt\n' >"$repo/Dockerfile"
(cd "$repo" && git init -q -b main && git add -A &&
  GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z \
    git -c user.name=b -c user.email=b@b -c commit.gpgsign=false commit -qm fixture &&
  git remote add origin https://github.com/acme/app.git)
config() { # dir production-gates extra
  mkdir -p "$1"
  cat >"$1/gitops.toml" <<TOML
registry = "$host"
image = "app"
dockerfile = "$repo/Dockerfile"
context = "$repo"
$3

[[environments]]
name = "production"
gates = $2

[[environments]]
name = "staging"
TOML
}
config "$work/staging" '{}' 'sign = "key"'
config "$work/ungated" '{}' ''
config "$work/gated" "{ previous = \"staging\", soak = \"30m\", signature = { key = \"$work/signing.pub\" }, provenance = true }" ''

say "building the staging image (podman), signed, its tag two hours old"
(cd "$repo" && GITOPS_SIGNING_KEY=$(cat "$work/signing.pem") timeout 300 "$bin" build --config "$work/staging/gitops.toml" \
  --build-with podman --retag-with builtin --timestamp $(($(date +%s) - 7200)) --format json >"$work/staging.json")
digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$work/staging.json")
(cd "$repo" && git -c user.name=b -c user.email=b@b tag -a -m release v1.0.0 && git checkout -q --detach v1.0.0)

promote() { # variant
  (cd "$repo" && "$bin" build -q --config "$work/$1/gitops.toml" --build-with podman --retag-with builtin --format json)
}
# Each variant once, checked: the gated one passes every gate.
promote ungated >"$work/ungated.json"
promote gated >"$work/gated.json"
python3 - "$work/gated.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
outcomes = [(g["gate"], g["outcome"]) for g in report["gates"]]
assert outcomes == [("previous", "passed"), ("soak", "passed"), ("signature", "passed"), ("provenance", "passed")], outcomes
PY
cosign_verify() {
  cosign verify --key "$work/signing.pub" --insecure-ignore-tlog=true --allow-http-registry=true "$host/app@$digest" >/dev/null 2>&1
}
cosign_verify || { echo "cosign verify failed" >&2; exit 1; }

settle
before=$(log_lines)
promote gated >/dev/null
settle
gated_requests=$(grep '^127\.0\.0\.1 - ' "$log" | tail -n +"$((before + 1))" | wc -l)
before=$(log_lines)
promote ungated >/dev/null
settle
ungated_requests=$(grep '^127\.0\.0\.1 - ' "$log" | tail -n +"$((before + 1))" | wc -l)

load=$(cut -d' ' -f1-3 /proc/loadavg)
say "timing $RUNS runs of each, ABBA (load average $load)"
export -f promote cosign_verify
export bin work repo host digest
python3 - "$RUNS" "$work/times.json" <<'PY'
import json, subprocess, sys, time
runs, out = int(sys.argv[1]), sys.argv[2]
variants = {
    "ungated": ["bash", "-c", "promote ungated >/dev/null"],
    "gated": ["bash", "-c", "promote gated >/dev/null"],
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

python3 - "$work/times.json" "$OUT" "$label" "$RUNS" "$gated_requests" "$ungated_requests" "${GITOPS_BIN:-release build}" "$load" <<'PY'
import json, os, statistics, sys
times, out, label, runs, gated_requests, ungated_requests, binary, load = sys.argv[1:9]
times = json.load(open(times))
med = {k: statistics.median(v) for k, v in times.items()}
added = med["gated"] - med["ungated"]
cpu = os.popen("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").read().strip()
lines = [
    f"Run of `bench/gates.sh` at {label}: RUNS={runs} per variant, alternating (ABBA), Debian's",
    f"docker-registry on 127.0.0.1, binary {binary}; machine: {cpu}, {os.cpu_count()} CPUs, shared",
    f"(load average at the start: {load}).",
    "",
    "| variant | median ms | min – max ms | registry requests |",
    "| --- | --: | --: | --: |",
    f"| ungated promotion (`gates = {{}}`) | {med['ungated']:.1f} | {min(times['ungated']):.1f} – {max(times['ungated']):.1f} | {ungated_requests} |",
    f"| gated promotion (previous, soak, signature, provenance) | {med['gated']:.1f} | {min(times['gated']):.1f} – {max(times['gated']):.1f} | {gated_requests} |",
    f"| `cosign verify --key` of the same digest | {med['cosign']:.1f} | {min(times['cosign']):.1f} – {max(times['cosign']):.1f} | - |",
    "",
    f"Gates added **{added:.1f} ms** to the median promotion (target: at most 100 ms: "
    + ("met" if added <= 100 else "**not met**")
    + f"); the gated promotion is {med['gated'] / med['ungated']:.2f}x the ungated one."
    + f" `cosign verify` checking the signature alone takes {med['cosign']:.1f} ms.",
    "",
]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
