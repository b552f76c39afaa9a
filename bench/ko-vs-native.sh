#!/usr/bin/env bash
# ko (Go) against cargo-gitops' native build (Rust demo-app), side by side in one run, pushing
# to one Debian docker-registry on 127.0.0.1 with an access log: pack+push time with the
# compile warm, image size (config + layers from the manifest), requests per push (access
# log), and whether two runs give the same digest. ko builds bench/ko-hello (a Go hello HTTP
# server, no dependencies) with `ko build --bare` on a zero-layer scratch base (linux/amd64)
# pushed to the same registry, GOCACHE warm under ~/.cache/cargo-gitops-tools/gocache.
# Usage: bench/ko-vs-native.sh   Knobs: RUNS=10 KEEP=0 GITOPS_BIN=(a built cargo-gitops) OUT=bench/ko-vs-native-results.md
#        GOCACHE_DIR=~/.cache/cargo-gitops-tools/gocache GOMODCACHE_DIR=…/gomod
# Needs ko and crane on PATH (export PATH=$HOME/.cache/cargo-gitops-tools/bin:$PATH), go,
# cargo, docker-registry, hyperfine, curl, jq, git, python3.
set -euo pipefail
RUNS=${RUNS:-10}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$root/bench/ko-vs-native-results.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
for tool in cargo go ko crane docker-registry hyperfine curl jq git python3 timeout; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done
work=$(mktemp -d /tmp/bench-ko.XXXXXX)
source "$root/bench/sbs-lib.sh"
trap sbs_cleanup EXIT

export GOCACHE=${GOCACHE_DIR:-$HOME/.cache/cargo-gitops-tools/gocache}
export GOMODCACHE=${GOMODCACHE_DIR:-$HOME/.cache/cargo-gitops-tools/gomod}
export GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
export DOCKER_CONFIG=$work/no-docker-config KOCACHE=$work/kocache
unset GITHUB_ACTIONS GITHUB_REF GITHUB_SHA GITHUB_OUTPUT GITHUB_STEP_SUMMARY GITOPS_REGISTRY_USER GITOPS_REGISTRY_PASSWORD SOURCE_DATE_EPOCH

if [[ -n ${GITOPS_BIN:-} ]]; then
  gitops=$GITOPS_BIN # an already built release cargo-gitops (knob)
else
  say "building cargo-gitops (release)"
  cargo build --quiet --release -p cargo-gitops --manifest-path "$root/Cargo.toml"
  gitops=$CARGO_TARGET_DIR/release/cargo-gitops
fi

start_registry open
host=$registry_host

say "pushing a zero-layer scratch base (linux/amd64) as $host/base:scratch"
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}' >"$work/base-config.json"
cfg_digest=sha256:$(sha256sum <"$work/base-config.json" | awk '{print $1}')
cfg_size=$(stat -c %s "$work/base-config.json")
location=$(curl -sf -X POST -D - -o /dev/null "http://$host/v2/base/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
[[ $location == http* ]] || location=http://$host$location
sep='?'; [[ $location == *\?* ]] && sep='&'
curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$work/base-config.json" \
  "$location${sep}digest=$cfg_digest" -o /dev/null
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[]}' \
  "$cfg_digest" "$cfg_size" >"$work/base-manifest.json"
curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary @"$work/base-manifest.json" "http://$host/v2/base/manifests/scratch" -o /dev/null
# (crane mutate --set-platform keeps the platform explicit, as ko picks the base by platform.)
crane mutate --insecure --set-platform linux/amd64 "$host/base:scratch" -t "$host/base:scratch" >/dev/null
base_digest=$(crane digest --insecure "$host/base:scratch")

# ko project: a copy of bench/ko-hello with .ko.yaml pointing at the local base.
mkdir -p "$work/ko-hello"
cp "$root/bench/ko-hello/go.mod" "$root/bench/ko-hello/main.go" "$work/ko-hello/"
printf 'defaultBaseImage: %s/base@%s\ndefaultPlatforms:\n- linux/amd64\n' "$host" "$base_digest" >"$work/ko-hello/.ko.yaml"
ko_build() { # repo [extra ko flags...]; prints the image reference
  local repo=$1
  shift
  (cd "$work/ko-hello" && KO_DOCKER_REPO=$host/$repo timeout 300 ko build --bare --insecure-registry "$@" . 2>>"$work/ko.err")
}
export -f ko_build
export work host

# Native: a workspace holding a copy of demo-app configured for this registry (as
# bench/native.sh does); two copies with two image names, committed at the same time.
native_ws() { # dir image
  mkdir -p "$1"
  cp -r "$root/demo-app" "$1/demo-app"
  cp "$root/Cargo.lock" "$1/"
  cat >"$1/Cargo.toml" <<TOML
[workspace]
resolver = "3"
members = ["demo-app"]
[workspace.package]
edition = "2024"
rust-version = "1.88"
license = "MIT OR Apache-2.0"
repository = "https://example.com/demo"
[profile.release]
lto = "thin"
codegen-units = 1
strip = true
[workspace.metadata.gitops]
registry = "$host"
image = "$2"
exposed-ports = ["8080/tcp"]
TOML
  (cd "$1" && git init -q -b main && git add -A &&
    GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z \
      git -c user.name=b -c user.email=b@b -c commit.gpgsign=false commit -qm bench)
}
native_ws "$work/ws-a" native-a
native_ws "$work/ws-b" native-b
nsha=$(git -C "$work/ws-a" rev-parse HEAD)
[[ $nsha == "$(git -C "$work/ws-b" rev-parse HEAD)" ]] || say "note: the two workspaces' commits differ"
native_build() { # dir sha
  (cd "$1" && timeout 600 "$gitops" build -q -p demo-app --build-with native --retag-with builtin --ref refs/heads/main --sha "$2")
}
export -f native_build
export gitops

say "warming the compiles (not measured): ko build --push=false, native --output oci:"
(cd "$work/ko-hello" && KO_DOCKER_REPO=$host/warm timeout 600 ko build --bare --insecure-registry --sbom=none --push=false . >/dev/null 2>>"$work/ko.err")
(cd "$work/ws-a" && timeout 1200 "$gitops" build -q -p demo-app --build-with native --output "oci:$work/warm-oci" >/dev/null)

busy_before=$(busy_pct)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# Requests per push: first push into an empty repository, then the same again.
say "requests per push"
count "first push, empty repository" "ko build --bare --sbom=none" ko_build ko-a --sbom=none
count "same image again (all blobs present)" "ko build --bare --sbom=none" ko_build ko-a --sbom=none
count "first push, empty repository" "ko build --bare (default: --sbom=spdx)" ko_build ko-sbom
count "first push, empty repository" "cargo gitops build --build-with native" native_build "$work/ws-a" "$nsha"
count "new commit id, same binary (layer present)" "cargo gitops build --build-with native" native_build "$work/ws-a" "$(printf '%040x' 0xbe0000ff)"

say "digest of two runs"
ko_a=$(crane digest --insecure "$host/ko-a:latest")
ko_build ko-b --sbom=none >/dev/null
ko_b=$(crane digest --insecure "$host/ko-b:latest")
native_build "$work/ws-b" "$nsha" >/dev/null
native_a=$(crane digest --insecure "$host/native-a:commit-$nsha")
native_b=$(crane digest --insecure "$host/native-b:commit-$nsha")
same() { [[ $1 == "$2" ]] && echo yes || echo NO; }

sizes() { # repo ref -> "config+layers bytes (layers bytes, N layers)"
  crane manifest --insecure "$host/$1:$2" | jq -r '"\(.config.size + ([.layers[].size] | add // 0)) | \([.layers[].size] | add // 0) | \(.layers | length)"'
}
ko_size=$(sizes ko-a latest)
native_size=$(sizes native-a "commit-$nsha")
ko_sbom_tags=$(curl -sf "http://$host/v2/ko-sbom/tags/list" | jq -r '.tags | join(", ")')

say "wall time"
go_version=$(go version | awk '{print $3}')
echo 0 >"$work/n"
next=$work/n
timeit "build + push, compile warm" --prepare "echo \$((\$(cat $next) + 1)) > $next" \
  "ko build --bare --sbom=none (same repository: image already there)" "ko_build ko-t --sbom=none" \
  "ko build --bare (default sbom=spdx)" "ko_build ko-s" \
  "cargo gitops build --build-with native (new commit id)" "native_build $work/ws-a \$(printf '%040x' \$((0xbf000000 + \$(cat $next))))" \
  "go build -trimpath alone (ko's compile step, warm cache)" "cd $work/ko-hello && go build -trimpath -o $work/hello-bin ." \
  "ko build --bare --sbom=none (new repository each run: all blobs uploaded)" "ko_build ko-n\$(cat $next) --sbom=none"
time_json=$last_json

{
  cat <<MD
# ko vs native (\`bench/ko-vs-native.sh\`)

- Date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(machine)
- CPU busy just before the timings: ${busy_before}%; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg) (2 shared cores; all commands in one hyperfine call, interleaved per command not per run)
- Registry: $(docker-registry --version 2>&1 | head -1), filesystem storage, 127.0.0.1, plain HTTP
- Tools: ko $(ko version), $go_version (GOCACHE warm, CGO_ENABLED=0), cargo-gitops $("$gitops" --version | awk '{print $2}') (release), crane $(crane version), $(hyperfine --version); RUNS=$RUNS after 1 warm-up
- ko base: zero-layer scratch image, linux/amd64, $host/base@$base_digest (.ko.yaml defaultBaseImage)

## Requests per push (one run each, from the access log)

$rows_header
$(printf '%s\n' "${rows[@]}")

ko with the default SBOM also pushes an SBOM artifact; tags in ko-sbom afterwards: $ko_sbom_tags.

## Image size (config + layers, from the manifest)

| image | config + layers bytes | layers bytes | layers |
| --- | --: | --: | --: |
| ko (Go hello HTTP server, net/http) | $ko_size |
| native (demo-app, axum + tokio, static) | $native_size |

## Same digest twice

| tool | run 1 | run 2 | same |
| --- | --- | --- | --- |
| ko build --bare --sbom=none (repos ko-a, ko-b) | $ko_a | $ko_b | $(same "$ko_a" "$ko_b") |
| native, same commit id, two workspaces (native-a, native-b) | $native_a | $native_b | $(same "$native_a" "$native_b") |

## Wall time

$times_header
$(printf '%s\n' "${times[@]}")

Ratios of medians, ko / native: ko --sbom=none, image already there $(ratio "$time_json" 2 0)×; ko default (SBOM) $(ratio "$time_json" 2 1)×; ko --sbom=none into a new repository $(ratio "$time_json" 2 4)×. ko's pack+push estimate = ko --sbom=none − go build alone: $(jq -r '((.results[0].median - .results[3].median) * 1000 | round)' "$time_json") ms. Native includes cargo's no-op freshness check of demo-app.
MD
} >"$OUT"
cat "$OUT"
