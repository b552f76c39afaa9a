#!/usr/bin/env bash
# A push that changes one of 10 services (issue 27), run locally as the generated pipelines run
# it: each service's build step (`cargo-gitops build -p NAME --environment staging`, with
# `--reuse-unchanged` as init-workflows writes it for a repository of several images) against
# a loopback docker-registry, each image built by podman from `FROM scratch` plus a file of its
# own. Side by side in one run:
#   reuse - the generated step: one service changed, so one build and nine retags
#   plain - the same step without --reuse-unchanged (what the pipelines did before): ten builds
# Each round commits a change to one service, then runs the ten steps of each variant on a
# registry of its own that holds the previous commit's ten images.
# Usage: bench/monorepo-push.sh
# Knobs (defaults): ROUNDS=3 GITOPS_BIN= (a built cargo-gitops; default: cargo build --release,
#   without LTO, into $CARGO_TARGET_DIR) OUT=bench/monorepo-push-results.md KEEP=0
# Needs cargo, git, podman, docker-registry, python3.
set -euo pipefail
ROUNDS=${ROUNDS:-3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$root/bench/monorepo-push-results.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
for tool in cargo git podman docker-registry python3; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done
if [ -z "${GITOPS_BIN:-}" ]; then
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo build --quiet --release --locked -p cargo-gitops --manifest-path "$root/Cargo.toml"
  GITOPS_BIN=$CARGO_TARGET_DIR/release/cargo-gitops
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
export STORAGE_DRIVER=vfs CONTAINERS_STORAGE_CONF="$work/storage.conf"
printf '[storage]\ndriver = "vfs"\nrunroot = "%s/run"\ngraphroot = "%s/graph"\n' "$work" "$work" >"$CONTAINERS_STORAGE_CONF"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Starts a registry storing in $1; prints its port.
start_registry() {
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir/data"
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$dir" "$port" >"$dir/config.yml"
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "$port"
}

services=(s0 s1 s2 s3 s4 s5 s6 s7 s8 s9)
repo=$work/repo
mkdir -p "$repo"
cd "$repo"
git init --quiet -b main .
git config user.email bench@example.invalid
git config user.name bench
for s in "${services[@]}"; do
  mkdir -p "$s"
  printf 'FROM scratch\nCOPY index.txt /index.txt\n' >"$s/Dockerfile"
  echo "$s 0" >"$s/index.txt"
done
write_config() {
  {
    printf 'registry = "127.0.0.1:%s/acme"\nbuilder = "podman"\n' "$1"
    for s in "${services[@]}"; do
      printf '\n[images.%s]\ndockerfile = "%s/Dockerfile"\ncontext = "%s"\n' "$s" "$s" "$s"
    done
  } >gitops.toml
}
write_config 1
git add -A && git commit --quiet -m "ten services"

# The ten build steps of one push, against the registry on port $1; prints "ms built retagged".
steps() {
  local port=$1 flag=$2 built=0 retagged=0 start end action
  write_config "$port"
  start=$(date +%s%N)
  for s in "${services[@]}"; do
    action=$("$GITOPS_BIN" gitops build -q -p "$s" --environment staging --retag-with builtin $flag --format json \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["action"])')
    case "$action" in built) built=$((built + 1)) ;; retagged) retagged=$((retagged + 1)) ;; esac
  done
  end=$(date +%s%N)
  git checkout --quiet gitops.toml
  echo "$(((end - start) / 1000000)) $built $retagged"
}

reuse_port=$(start_registry "$work/reg-reuse")
plain_port=$(start_registry "$work/reg-plain")
# The first commit's ten images in both registries.
steps "$reuse_port" --reuse-unchanged >/dev/null
steps "$plain_port" "" >/dev/null

rows=()
for round in $(seq "$ROUNDS"); do
  changed=${services[$((round % 10))]}
  echo "$changed $round" >"$changed/index.txt"
  git commit --quiet -am "change $changed"
  read -r r_ms r_built r_retagged < <(steps "$reuse_port" --reuse-unchanged)
  read -r p_ms p_built p_retagged < <(steps "$plain_port" "")
  rows+=("| $round | $changed | $r_ms ms: $r_built built, $r_retagged retagged | $p_ms ms: $p_built built, $p_retagged retagged |")
done

{
  echo "# bench/monorepo-push.sh results"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(podman --version), $("$GITOPS_BIN" --version)"
  echo "Ten services built by podman (vfs) from FROM scratch, a loopback docker-registry per variant; ROUNDS=$ROUNDS."
  echo
  echo "| round | changed | the generated steps (--reuse-unchanged) | without it |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$OUT"
