#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# What signing and attaching add to a native pack + push (issue 16: at most 10 %). Side by
# side, alternating (ABBA order), in one run, against a loopback registry:
#   plain    - `cargo gitops build --build-with native` of a small crate, no evidence;
#   evidence - the same crate, signed with a key (`sign = "key"`, the PEM in
#              GITOPS_SIGNING_KEY) and its SBOM and provenance attached as referrers.
# How the evidence is made depends on the binary, probed with `build --dry-run`: when it
# accepts `sbom = false` / `provenance = false` in the configuration (so it makes them itself
# for native builds), plain sets both to false and evidence leaves them on; otherwise plain
# attaches nothing and evidence passes `--attach` with an SPDX SBOM syft made of the crate and
# an in-toto provenance statement of the size a real one has.
# Each fixture's compile is warmed first; each measured build gets a new commit id (`--sha`),
# so the lookup misses and the image (its labels name the commit) is new: packed, pushed,
# signed and attached afresh every time. Measured: the wall time of the whole
# `cargo gitops build`, and the part after the compile (from the moment its "compile …: done"
# progress line arrives to exit: pack, push, claim, sign, attach, tag).
# Usage: bench/supply-overhead.sh
# Knobs (defaults): RUNS=10 (per variant) KEEP=0 OUT=bench/supply-overhead-results.md (the
#   committed one holds a docker-registry run and an olareg run, one after the other)
#   REGISTRY=distribution (Debian's docker-registry; `olareg`: one with the referrers API)
#   GITOPS_BIN= (a built cargo-gitops; default: cargo build --release into $CARGO_TARGET_DIR)
#   FIXTURE=hello (a hello-world crate: the least there is to pack and push, so the worst
#   ratio; `demo-app`: the sample service of this repository, axum on tokio, each variant
#   compiled once into a target directory of its own, a few minutes)
# Needs cargo, docker-registry, curl, jq, git, python3, openssl, syft (.ci/install-tools syft).
set -euo pipefail
RUNS=${RUNS:-10}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$root/bench/supply-overhead-results.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
PATH="$HOME/.cache/cargo-gitops-tools/bin:$PATH"
for tool in cargo docker-registry curl jq git python3 openssl syft timeout; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done
echo "RUNS=$RUNS OUT=$OUT REGISTRY=${REGISTRY:-distribution} FIXTURE=${FIXTURE:-hello}" >&2
work=$(mktemp -d /tmp/bench-supply.XXXXXX)
# shellcheck source=sbs-lib.sh
source "$root/bench/sbs-lib.sh"
trap sbs_cleanup EXIT
unset GITHUB_ACTIONS GITHUB_REF GITHUB_SHA GITHUB_OUTPUT GITHUB_STEP_SUMMARY GITOPS_REGISTRY_USER GITOPS_REGISTRY_PASSWORD SOURCE_DATE_EPOCH GITOPS_SIGNING_KEY
export DOCKER_CONFIG=$work/no-docker-config

if [[ -n ${GITOPS_BIN:-} ]]; then
  bin=$GITOPS_BIN
else
  say "building cargo-gitops (release) at $(git -C "$root" rev-parse --short HEAD)"
  cargo build --quiet --release -p cargo-gitops --manifest-path "$root/Cargo.toml"
  bin=$CARGO_TARGET_DIR/release/cargo-gitops
fi
label="$(git -C "$root" rev-parse --short HEAD), source of $(git -C "$root" log -1 --format=%h -- cargo-gitops Cargo.toml Cargo.lock)"

case ${REGISTRY:-distribution} in
  distribution)
    start_registry dst
    registry_name="Debian's docker-registry (no referrers API: the referrers tag schema)"
    ;;
  olareg) # .ci/install-tools olareg: the OCI 1.1 referrers API, storage in memory
    command -v olareg >/dev/null || { echo "$0: olareg not found (.ci/install-tools olareg)" >&2; exit 1; }
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    say "starting olareg on 127.0.0.1:$port"
    (cd "$work" && exec olareg serve --store-type mem --addr 127.0.0.1 --port "$port" >"$work/olareg.log" 2>&1) &
    registry_pids+=($!)
    for _ in $(seq 100); do
      curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && break
      sleep 0.1
    done
    curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" || { echo "olareg did not start" >&2; exit 1; }
    registry_host=127.0.0.1:$port
    registry_name="olareg v0.1.2 (the referrers API)"
    ;;
  *) echo "$0: REGISTRY is distribution or olareg" >&2; exit 1 ;;
esac
dst=$registry_host

# The signing key: made here, handed over in the environment only, never printed.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/signing.pem" 2>/dev/null
openssl pkey -in "$work/signing.pem" -pubout -out "$work/signing.pub" 2>/dev/null

fixture() { # dir image extra-config
  mkdir -p "$1/src"
  if [[ ${FIXTURE:-hello} == demo-app ]]; then
    # The sample service this repository ships (axum on tokio), standalone, at the versions
    # of this repository's lock file.
    cat >"$1/Cargo.toml" <<TOML
[package]
name = "demo-app"
version = "0.1.0"
edition = "2024"

[dependencies]
$(sed -n '/^\[dependencies\]/,/^\[/{/^axum\|^tokio/p}' "$root/demo-app/Cargo.toml")

[workspace]

[package.metadata.gitops]
registry = "$dst"
image = "$2"
$3
TOML
    cp "$root"/demo-app/src/*.rs "$1/src/"
    cp "$root/Cargo.lock" "$1/Cargo.lock"
  else
    cat >"$1/Cargo.toml" <<TOML
[package]
name = "hello"
version = "0.1.0"
edition = "2021"

[workspace]

[package.metadata.gitops]
registry = "$dst"
image = "$2"
$3
TOML
    printf 'fn main() {\n    println!("hello from a native image");\n}\n' >"$1/src/main.rs"
  fi
  printf '/target\n' >"$1/.gitignore"
  (cd "$1" && git init -q -b main && git add -A &&
    GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z \
      git -c user.name=b -c user.email=b@b -c commit.gpgsign=false commit -qm fixture)
}

# --- does the binary make SBOM and provenance itself? ---------------------------------------
probe() { # config line -> 0 when a dry run accepts it
  rm -rf "$work/probe"
  fixture "$work/probe" probe "$1"
  (cd "$work/probe" && timeout 120 "$bin" build --dry-run --build-with native --retag-with builtin \
    --ref refs/heads/main >/dev/null 2>"$work/probe.err")
}
if probe $'sbom = false\nprovenance = false' && ! probe 'no-such-setting-at-all = false'; then
  mode=config
  plain_config=$'sbom = false\nprovenance = false'
  evidence_config='sign = "key"'
else
  mode=attach
  plain_config=''
  evidence_config='sign = "key"'
fi
say "evidence made by: $mode"
fixture "$work/plain" plain "$plain_config"
fixture "$work/evidence" evidence "$evidence_config"

attach=()
if [[ $mode == attach ]]; then
  # The SBOM a scanner makes of the crate (its sources and lockfile), as a build would attach.
  (cd "$work/evidence" && { cargo generate-lockfile --quiet --offline 2>/dev/null || cargo generate-lockfile --quiet; })
  SYFT_CHECK_FOR_APP_UPDATE=false timeout 300 syft scan -q -o spdx-json "dir:$work/evidence" >"$work/sbom.spdx.json"
  # A provenance statement of a real one's shape and size (an in-toto statement with a SLSA v1
  # predicate: builder, source, command, resolved dependencies, times).
  python3 - "$work/provenance.json" <<'PY'
import json, sys
statement = {
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": "127.0.0.1/evidence", "digest": {"sha256": "0" * 64}}],
    "predicateType": "https://slsa.dev/provenance/v1",
    "predicate": {
        "buildDefinition": {
            "buildType": "https://example.com/cargo-gitops/native/v1",
            "externalParameters": {
                "source": {"uri": "git+https://example.com/org/app", "digest": {"gitCommit": "0" * 40}},
                "command": ["cargo", "gitops", "build", "--build-with", "native"],
                "platforms": ["linux/amd64"], "profile": "release", "features": [],
            },
            "internalParameters": {"rustc": "rustc 1.91.0", "cargo": "cargo 1.91.0", "target": "x86_64-unknown-linux-musl"},
            "resolvedDependencies": [
                {"name": f"crate-{i}", "uri": f"pkg:cargo/crate-{i}@1.0.{i}", "digest": {"sha256": f"{i:064x}"}}
                for i in range(12)
            ],
        },
        "runDetails": {
            "builder": {"id": "https://example.com/runner", "version": {"cargo-gitops": "0.1.0"}},
            "metadata": {"invocationId": "1-1", "startedOn": "2026-01-01T00:00:00Z", "finishedOn": "2026-01-01T00:01:00Z"},
        },
    },
}
open(sys.argv[1], "w").write(json.dumps(statement, indent=2))
PY
  attach=(--attach "application/spdx+json=$work/sbom.spdx.json" --attach "application/vnd.in-toto+json=$work/provenance.json")
  say "attaching an SBOM of $(stat -c %s "$work/sbom.spdx.json") bytes and a provenance statement of $(stat -c %s "$work/provenance.json") bytes"
fi

# Runs a command with its stderr read line by line as it comes, and writes to TIMES "total_ms
# after_compile_ms": the wall time from start to exit, and from the end of the compile (the
# moment its "compile …: done in" progress line arrives) to exit, which is pack, push, claim,
# sign, attach and tag. The progress lines go to ERR.
cat >"$work/timed.py" <<'PY'
import subprocess, sys, time
times, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
start = time.monotonic()
compiled = None
with open(err, "w") as out, open(err + ".ms", "w") as stamped:
    child = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    for line in child.stderr:
        now = time.monotonic()
        if compiled is None and line.startswith("compile ") and ": done in " in line:
            compiled = now
        out.write(line)
        stamped.write(f"{(now - start) * 1000:7.0f} ms  {line}")
    code = child.wait()
end = time.monotonic()
if code != 0:
    sys.exit(code)
if compiled is None:
    sys.exit("no compile progress line")
with open(times, "w") as out:
    out.write(f"{(end - start) * 1000:.0f} {(end - compiled) * 1000:.0f}\n")
PY
n=0
# One build of a variant with a new commit id; appends "variant total_ms after_compile_ms sha"
# to $work/times and keeps the JSON report and progress lines of the last one.
build() { # variant
  local variant=$1 sha args=() env=()
  n=$((n + 1))
  sha=$(printf '%040x' $((0x5b1e00000 + n)))
  [[ $variant == evidence ]] && args=("${attach[@]}") && env=(GITOPS_SIGNING_KEY="$(cat "$work/signing.pem")")
  # Two copies of one package in one target directory rebuild each other (demo-app's took 30 s
  # a build that way): each variant of it compiles into its own.
  [[ ${FIXTURE:-hello} == demo-app ]] && env+=(CARGO_TARGET_DIR="$work/target-$variant")
  cd "$work/$variant"
  env "${env[@]}" timeout 600 python3 "$work/timed.py" "$work/last" "$work/$variant.err" \
    "$bin" build --build-with native --retag-with builtin \
    --ref refs/heads/main --sha "$sha" --format json "${args[@]}" >"$work/$variant.json" \
    || { cat "$work/$variant.err" >&2; exit 1; }
  cd "$work"
  echo "$variant $(cat "$work/last") $sha" >>"$work/times"
}

say "warming both fixtures' compiles and checking what each build attaches (not measured)"
for variant in plain evidence; do
  build "$variant"
  jq -c '[.action, [.evidence[]? | .action + ":" + (.artifact_type // "tag")]]' "$work/$variant.json" >&2
done
cp "$work/plain.err" "$work/sample-plain.err"
cp "$work/evidence.err" "$work/sample-evidence.err"
# The evidence build really signed and attached: cosign verifies the image where it landed.
digest=$(jq -r .digest "$work/evidence.json")
jq -e '[.evidence[] | .action] | index("signed") != null and (map(select(. == "attached")) | length) >= 2' "$work/evidence.json" >/dev/null \
  || { echo "$0: the evidence build did not sign and attach two documents" >&2; exit 1; }
jq -e '(.evidence // []) | length == 0' "$work/plain.json" >/dev/null \
  || { echo "$0: the plain build attached something" >&2; exit 1; }
if command -v cosign >/dev/null; then
  cosign verify --key "$work/signing.pub" --insecure-ignore-tlog=true --allow-http-registry=true \
    "$dst/evidence@$digest" >/dev/null 2>"$work/verify.err" || { cat "$work/verify.err" >&2; exit 1; }
  say "cosign verify passed on $dst/evidence@$digest"
fi
: >"$work/times"

say "measuring: $RUNS runs each, alternating (ABBA)"
busy=$(busy_pct)
for ((i = 0; i < RUNS; i++)); do
  if ((i % 2 == 0)); then order=(plain evidence); else order=(evidence plain); fi
  for variant in "${order[@]}"; do build "$variant"; done
done

summary=$(python3 - "$work/times" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
out = {}
for variant in ("plain", "evidence"):
    total = [int(r[1]) for r in rows if r[0] == variant]
    after = [int(r[2]) for r in rows if r[0] == variant]
    out[variant] = (statistics.median(total), min(total), max(total), statistics.median(after), min(after), max(after), len(total))
p, e = out["plain"], out["evidence"]
for variant in ("plain", "evidence"):
    t = out[variant]
    print(f"| {variant} | {t[0]:.0f} | {t[1]} – {t[2]} | {t[3]:.0f} | {t[4]} – {t[5]} | {t[6]} |")
print(f"RATIO_TOTAL={e[0] / p[0]:.3f}")
print(f"RATIO_AFTER={e[3] / p[3]:.3f}" if p[3] else "RATIO_AFTER=n/a")
PY
)
table=$(grep '^|' <<<"$summary")
ratio_total=$(sed -n 's/^RATIO_TOTAL=//p' <<<"$summary")
ratio_after=$(sed -n 's/^RATIO_AFTER=//p' <<<"$summary")
{
  echo "### Supply-chain overhead, ${FIXTURE:-hello}, ${REGISTRY:-distribution} ($(date -u +%Y-%m-%d))"
  echo
  echo "Command: \`bench/supply-overhead.sh\` (RUNS=$RUNS). Binary: $label. Machine: $(machine); CPUs $busy % busy before the runs."
  echo "Evidence made by: $mode. Registry: $registry_name, on loopback; every build a new commit id."
  echo
  echo '| variant | wall median ms | wall min – max ms | after compile median ms | min – max ms | runs |'
  echo '| --- | --: | --: | --: | --: | --: |'
  echo "$table"
  echo
  echo "Ratio evidence / plain: whole build $ratio_total, the part after the compile (pack + push, and for evidence sign + attach) $ratio_after."
  echo
  echo 'Progress lines of one evidence build:'
  echo
  echo '```'
  grep -E ': done in ' "$work/sample-evidence.err" | sed -E "s/[0-9a-f]{40}/<sha>/g"
  echo '```'
} >"$OUT"
cat "$OUT"
