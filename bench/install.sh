#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The generated workflow's install step and promotion path, run for real (issue 13), side by
# side in one run with what CI without the prebuilt would do:
#   prebuilt  - the install step's `run:` script and `env:` read back from the generated
#               gitops-pipeline.yml, run as a runner runs a bash step (fresh RUNNER_TEMP each
#               time): download the archive from a loopback release server, check the pinned
#               SHA-256, unpack, run --version;
#   promotion - that install step, then the generated "build or retag" step with the installed
#               binary, for a commit whose lookup tag an earlier native build pushed to a
#               loopback docker-registry: a retag only (new timestamped tag each run);
#   cargo     - `cargo install --locked --path cargo-gitops` of the same version into a fresh
#               root with a cold target dir (crates already downloaded in CARGO_HOME).
# The release is the current tree's `cargo build --release -p cargo-gitops`, packed in the
# release workflow's layout (cargo-gitops-TARGET-vVERSION.tar.gz holding
# cargo-gitops-TARGET-vVERSION/cargo-gitops, a .sha256 beside it, cargo-gitops-vVERSION.sha256sums)
# under the name of TARGET (x86_64-unknown-linux-musl, what an X64 runner installs); the binary
# itself is this machine's host build. Its pin comes from `cargo gitops pins update --only
# install --release-base http://127.0.0.1:PORT`. Rounds interleave the three: per round
# PER_ROUND prebuilt installs and PER_ROUND promotions, alternating, then one cargo install
# (in the first CARGO_RUNS rounds).
# Usage: bench/install.sh
# Knobs (defaults): ROUNDS=3 PER_ROUND=4 CARGO_RUNS=3 (cargo installs, one at the end of each of
#   the first CARGO_RUNS rounds; 0 skips them: each is minutes on 2 cores)
#   INSTALL_TARGET=5 PROMOTION_TARGET=10 (seconds, the targets the report checks) KEEP=0
#   GITOPS_BIN= (a built release cargo-gitops; default: cargo build --release into
#   $CARGO_TARGET_DIR) OUT=bench/install-results.md
# Needs cargo, docker-registry, curl, jq, git, python3 (with PyYAML), tar, sha256sum, timeout.
set -euo pipefail
ROUNDS=${ROUNDS:-3}
PER_ROUND=${PER_ROUND:-4}
CARGO_RUNS=${CARGO_RUNS:-3}
INSTALL_TARGET=${INSTALL_TARGET:-5}
PROMOTION_TARGET=${PROMOTION_TARGET:-10}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$root/bench/install-results.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
for tool in cargo docker-registry curl jq git python3 tar sha256sum timeout; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done
python3 -c 'import yaml' 2>/dev/null || { echo "$0: python3 needs PyYAML (python3-yaml)" >&2; exit 1; }
echo "ROUNDS=$ROUNDS PER_ROUND=$PER_ROUND CARGO_RUNS=$CARGO_RUNS INSTALL_TARGET=$INSTALL_TARGET PROMOTION_TARGET=$PROMOTION_TARGET OUT=$OUT" >&2
work=$(mktemp -d /tmp/bench-install.XXXXXX)
# shellcheck source=sbs-lib.sh
source "$root/bench/sbs-lib.sh"
trap sbs_cleanup EXIT
unset GITHUB_ACTIONS GITHUB_REF GITHUB_SHA GITHUB_OUTPUT GITHUB_STEP_SUMMARY GITHUB_PATH GITOPS_REGISTRY_USER GITOPS_REGISTRY_PASSWORD SOURCE_DATE_EPOCH
export DOCKER_CONFIG=$work/no-docker-config
target=x86_64-unknown-linux-musl
# What the steps see of this machine: the system's programs only (no crane: the default
# retagger would pick it, and a runner does not have it).
# cargo's folder too: a runner has cargo on PATH, and the configuration is read with it.
step_path=$(dirname "$(command -v cargo)"):/usr/local/bin:/usr/bin:/bin

if [[ -n ${GITOPS_BIN:-} ]]; then
  gitops=$GITOPS_BIN
else
  say "building cargo-gitops (release)"
  cargo build --quiet --release -p cargo-gitops --manifest-path "$root/Cargo.toml"
  gitops=$CARGO_TARGET_DIR/release/cargo-gitops
fi
version=$("$gitops" --version | awk '{print $2}')

# --- the release, served on 127.0.0.1 -------------------------------------------------------
name=cargo-gitops-$target-v$version
rel=$work/releases/cargo-gitops-v$version
mkdir -p "$rel" "$work/stage/$name"
cp "$gitops" "$work/stage/$name/cargo-gitops"
tar -C "$work/stage" -czf "$rel/$name.tar.gz" "$name"
(cd "$rel" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256" && sort -k 2 ./*.tar.gz.sha256 >"cargo-gitops-v$version.sha256sums")
archive_bytes=$(stat -c %s "$rel/$name.tar.gz")
archive_sha=$(cut -d' ' -f1 "$rel/$name.tar.gz.sha256")
binary_bytes=$(stat -c %s "$gitops")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/releases" "$port" >"$work/http.log" 2>&1 &
registry_pids+=($!)
base_url=http://127.0.0.1:$port
for _ in $(seq 100); do
  curl -sf -o /dev/null "$base_url/cargo-gitops-v$version/cargo-gitops-v$version.sha256sums" && break
  sleep 0.1
done
curl -sf -o /dev/null "$base_url/cargo-gitops-v$version/cargo-gitops-v$version.sha256sums" || { echo "$0: the release server did not start" >&2; exit 1; }
say "release $name.tar.gz ($archive_bytes bytes) served at $base_url"

start_registry reg
reg=$registry_host

# --- the repository: a hello-world crate built natively, its workflows generated -----------
repo=$work/repo
mkdir -p "$repo/src"
# The settings in the workspace table: `pins update` writes there whenever the file has a
# [workspace] table, and refuses when a root package keeps its settings in its own table.
cat >"$repo/Cargo.toml" <<TOML
[package]
name = "hello"
version = "0.1.0"
edition = "2021"

[workspace]

[workspace.metadata.gitops]
registry = "$reg"
image = "hello"
builder = "native"

[workspace.metadata.gitops.registry-logins."$reg"]
username-secret = "REGISTRY_USER"
password-secret = "REGISTRY_PASSWORD"

[workspace.metadata.gitops.install]
version = "$version"
TOML
printf 'fn main() {\n    println!("hello");\n}\n' >"$repo/src/main.rs"
printf '/target\n' >"$repo/.gitignore"
git_commit() {
  (cd "$repo" && git add -A && GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z \
    git -c user.name=b -c user.email=b@b -c commit.gpgsign=false commit -qm "$1")
}
(cd "$repo" && git init -q -b main)
git_commit "first"
say "cargo gitops pins update --only install --release $version --release-base $base_url"
(cd "$repo" && "$gitops" pins update -q --only install --release "$version" --release-base "$base_url")
grep -q "$target = \"$archive_sha\"" "$repo/Cargo.toml" || { echo "$0: pins update did not pin $archive_sha" >&2; exit 1; }
(cd "$repo" && "$gitops" init-workflows -q)
git_commit "workflows"
sha=$(git -C "$repo" rev-parse HEAD)

# The steps of the build job: each step's script and env, a GitHub expression in env replaced
# by the value a dispatch would give (environment staging, no ref input: GITHUB_REF is used).
python3 - "$repo/.github/workflows/gitops-pipeline.yml" "$work" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
inputs = {"${{ inputs.ref }}": "", "${{ inputs.environment }}": "staging"}
steps = {s.get("name", ""): s for s in doc["jobs"]["build"]["steps"]}
for key, prefix in (("install", "install cargo-gitops"), ("build", "build or retag")):
    step = next(s for n, s in steps.items() if n.startswith(prefix))
    with open(f"{sys.argv[2]}/{key}-step.sh", "w") as f:
        f.write(step["run"])
    with open(f"{sys.argv[2]}/{key}-step.env", "w") as f:
        for k, v in (step.get("env") or {}).items():
            v = inputs.get(v, v)
            if "${{" in v:
                sys.exit(f"step {step['name']}: env {k} is an expression this bench does not know: {v}")
            f.write(f"{k}={v}\n")
PY
mapfile -t install_env <"$work/install-step.env"
mapfile -t build_env <"$work/build-step.env"
grep -qx "GITOPS_SHA256_X86_64_UNKNOWN_LINUX_MUSL=$archive_sha" "$work/install-step.env" || { echo "$0: the install step does not pin $archive_sha" >&2; exit 1; }

runner_env() { # runner dir -> the variables a runner gives every step
  printf '%s\n' "HOME=$1" RUNNER_OS=Linux RUNNER_ARCH=X64 "RUNNER_TEMP=$1/temp" "GITHUB_PATH=$1/github_path" \
    GITHUB_ACTIONS=true CI=true GITHUB_REF=refs/heads/main GITHUB_REF_NAME=main "GITHUB_SHA=$sha" \
    "GITHUB_OUTPUT=$1/output" "GITHUB_STEP_SUMMARY=$1/summary" "CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}" \
    "RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}"
}
install_step() { # runner dir: a fresh one each time
  local -a env
  rm -rf "$1"
  mkdir -p "$1/temp"
  mapfile -t env < <(runner_env "$1")
  env -i "PATH=$step_path" "${env[@]}" "${install_env[@]}" "GITOPS_RELEASE_BASE_URL=$base_url" \
    timeout 120 bash --noprofile --norc -eo pipefail "$work/install-step.sh" >"$1/install.out" 2>&1 ||
    { cat "$1/install.out" >&2; return 1; }
}
build_step() { # runner dir, after install_step in it
  local -a env
  local bin_dir
  bin_dir=$(tail -n 1 "$1/github_path")
  mapfile -t env < <(runner_env "$1")
  (cd "$repo" && env -i "PATH=$bin_dir:$step_path" "${env[@]}" "${build_env[@]}" \
    timeout 120 bash --noprofile --norc -eo pipefail "$work/build-step.sh" >"$1/build.out" 2>&1) ||
    { cat "$1/build.out" >&2; return 1; }
}
promotion() { install_step "$1" && build_step "$1"; }
cargo_install() {
  rm -rf "$work/cargo-root" "$work/cargo-target"
  timeout 1800 cargo install --quiet --locked --path "$root/cargo-gitops" --root "$work/cargo-root" \
    --target-dir "$work/cargo-target" >"$work/cargo.out" 2>&1 || { cat "$work/cargo.out" >&2; return 1; }
  [[ $("$work/cargo-root/bin/cargo-gitops" --version) == "cargo-gitops $version" ]]
}

say "checking the install step once"
install_step "$work/runner"
installed=$(tail -n 1 "$work/runner/github_path")
[[ $("$installed/cargo-gitops" --version) == "cargo-gitops $version" ]] || { echo "$0: the installed binary is not $version" >&2; exit 1; }
cmp -s "$installed/cargo-gitops" "$gitops" || { echo "$0: the installed binary is not the one packed" >&2; exit 1; }
say "seeding: a native build of $sha pushes $reg/hello:commit-$sha (not measured)"
(cd "$repo" && timeout 900 "$gitops" build -q --build-with native --retag-with builtin --ref refs/heads/main --sha "$sha" >/dev/null)
lookup_digest=$(manifest_sha hello "commit-$sha")
say "checking the promotion once"
tags_before=$(curl -sf "http://$reg/v2/hello/tags/list" | jq -r '.tags | length')
sleep 1.1
promotion "$work/runner"
grep -qi 'retag' "$work/runner/build.out" || { echo "$0: the build step did not retag:" >&2; cat "$work/runner/build.out" >&2; exit 1; }
for tag in $(curl -sf "http://$reg/v2/hello/tags/list" | jq -r '.tags[]'); do
  [[ $(manifest_sha hello "$tag") == "$lookup_digest" ]] || { echo "$0: tag $tag is not on the lookup digest" >&2; exit 1; }
done
tags_after=$(curl -sf "http://$reg/v2/hello/tags/list" | jq -r '.tags | length')
((tags_after > tags_before)) || { echo "$0: the promotion added no tag" >&2; exit 1; }
promotion_sample=$(cat "$work/runner/build.out")

# --- timings ---------------------------------------------------------------------------------
results=$work/times.tsv
: >"$results"
now() { date +%s%N; }
timed() { # kind command... -> appends "kind seconds"
  local kind=$1 t0 t1
  shift
  t0=$(now)
  "$@"
  t1=$(now)
  echo "$kind $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" >>"$results"
  say "$kind: $(tail -n 1 "$results" | cut -d' ' -f2) s"
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(busy_pct)
started=$(date -u +%Y-%m-%dT%H:%MZ)
for ((round = 1; round <= ROUNDS; round++)); do
  say "round $round of $ROUNDS"
  for ((i = 0; i < PER_ROUND; i++)); do
    timed prebuilt install_step "$work/runner"
    sleep 1.1 # a new {timestamp}, so that each promotion writes a new tag (not timed)
    timed promotion promotion "$work/runner"
  done
  if ((round <= CARGO_RUNS)); then timed cargo cargo_install; fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

stat_of() { # kind -> "median|min|max|n"
  awk -v k="$1" '$1 == k { print $2 }' "$results" | sort -n | awk '
    { v[NR] = $1 }
    END { if (NR == 0) { print "–|–|–|0"; exit }
          m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%.2f|%.2f|%.2f|%d\n", m, v[1], v[NR], NR }'
}
verdict() { awk -v m="$1" -v t="$2" 'BEGIN { print (m + 0 <= t) ? "yes" : "NO" }'; }
IFS='|' read -r pm plo phi pn < <(stat_of prebuilt)
IFS='|' read -r qm qlo qhi qn < <(stat_of promotion)
IFS='|' read -r cm clo chi cn < <(stat_of cargo)
{
  echo "# Install step and promotion path (\`bench/install.sh\`)"
  echo
  echo "- Run $started; machine: $(machine)"
  echo "- CPU busy just before: ${busy_before}%; load average before: $load_before, after: $load_after"
  echo "- Command: \`ROUNDS=$ROUNDS PER_ROUND=$PER_ROUND CARGO_RUNS=$CARGO_RUNS bench/install.sh\`"
  echo "- Release: cargo-gitops $version, $name.tar.gz $archive_bytes bytes (binary $binary_bytes bytes), served by python3 -m http.server on 127.0.0.1; pin from \`pins update --only install\`"
  echo "- Registry: $(docker-registry --version 2>&1 | head -1), 127.0.0.1; lookup tag commit-$sha seeded by a native build"
  echo
  echo "| path | median s | min – max s | runs | target |"
  echo "| --- | --: | --: | --: | --- |"
  echo "| prebuilt install step (download, SHA-256, unpack, --version) | $pm | $plo – $phi | $pn | ≤ $INSTALL_TARGET s: $(verdict "$pm" "$INSTALL_TARGET"); ≤ 1 s: $(verdict "$pm" 1) |"
  echo "| promotion: install step + build step (retag only) | $qm | $qlo – $qhi | $qn | ≤ $PROMOTION_TARGET s: $(verdict "$qm" "$PROMOTION_TARGET") |"
  if ((CARGO_RUNS > 0)); then
    echo "| cargo install --locked --path cargo-gitops, cold target dir | $cm | $clo – $chi | $cn | |"
    echo
    echo "Ratio of medians, cargo install / prebuilt install: $(awk -v a="$cm" -v b="$pm" 'BEGIN { printf "%.0f", a / b }')×; promotion − install step (the build step alone): $(awk -v a="$qm" -v b="$pm" 'BEGIN { printf "%.2f", a - b }') s."
  fi
  echo
  echo "Build step output of the checked promotion:"
  echo
  echo '```'
  echo "$promotion_sample"
  echo '```'
} >"$OUT"
cat "$OUT"
