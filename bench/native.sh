#!/usr/bin/env bash
# Benchmark: with demo-app already compiled, the time to pack and push its image with
# `cargo gitops build --build-with native` against `podman build` + `podman push` of a
# FROM-scratch Dockerfile that copies the same binary, side by side in one run, against a
# local docker-registry; and the image sizes. Usage: bench/native.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${1:-10}
work=$(mktemp -d)
trap 'kill $(cat "$work/registry.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
export STORAGE_DRIVER=vfs

cargo build --quiet --release -p cargo-gitops
gitops=$root/target/release/cargo-gitops

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/data}}
http: {addr: 127.0.0.1:$port}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
echo $! >"$work/registry.pid"
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.05; done
registry=127.0.0.1:$port

# A workspace holding demo-app, configured for the local registry, sharing this target dir.
mkdir -p "$work/ws"
cp -r demo-app "$work/ws/demo-app"
cp Cargo.lock "$work/ws/"
cat > "$work/ws/Cargo.toml" <<EOF
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
registry = "$registry"
image = "native"
exposed-ports = ["8080/tcp"]
EOF
(cd "$work/ws" && git init -q -b main && git add -A && git -c user.name=b -c user.email=b@b commit -qm bench)
export CARGO_TARGET_DIR=$root/target
# Compile once, so that the runs below measure packing and pushing only.
(cd "$work/ws" && "$gitops" build -q -p demo-app --build-with native --output "oci:$work/warmup" >/dev/null)
binary=$root/target/x86_64-unknown-linux-gnu/release/demo-app

mkdir -p "$work/podman"
cp "$binary" "$work/podman/demo-app"
printf 'FROM scratch\nCOPY demo-app /usr/local/bin/demo-app\nUSER 65532\nEXPOSE 8080\nENTRYPOINT ["/usr/local/bin/demo-app"]\n' >"$work/podman/Dockerfile"

now() { date +%s%N; }
native_ms=()
podman_ms=()
for i in $(seq "$runs"); do
  # A new commit id each run, so every run builds and pushes a new image (a run whose
  # commit is already in the registry would only retag).
  sha=$(printf '%040x' "$((0xbe000000 + i))")
  start=$(now)
  (cd "$work/ws" && "$gitops" build -q -p demo-app --build-with native --retag-with builtin --ref refs/heads/main --sha "$sha" >/dev/null)
  native_ms+=($(( ($(now) - start) / 1000000 )))

  start=$(now)
  podman build -q -t "$registry/podman:commit-$sha" "$work/podman" >/dev/null
  podman push -q --tls-verify=false "$registry/podman:commit-$sha" >/dev/null
  podman_ms+=($(( ($(now) - start) / 1000000 )))
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
nm=$(median "${native_ms[@]}")
pm=$(median "${podman_ms[@]}")

size_of() { # compressed size of an image: config + layers, from the registry
  local repo=$1 tag=$2 manifest
  manifest=$(curl -fs -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' "http://$registry/v2/$repo/manifests/$tag")
  python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["config"]["size"]+sum(l["size"] for l in m["layers"]))' <<<"$manifest"
}
last=$(printf '%040x' "$((0xbe000000 + runs))")
native_size=$(size_of native "commit-$last")
podman_size=$(size_of podman "commit-$last")

echo "## Native image build: pack and push (demo-app already compiled)"
echo
echo "\`bench/native.sh $runs\` on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%Y-%m-%d)."
echo
echo "| | native (\`cargo gitops build --build-with native\`) | \`podman build\` + \`podman push\` | ratio |"
echo "|---|---|---|---|"
echo "| median wall time, $runs runs (ms) | $nm | $pm | $(python3 -c "print(f'{$pm/$nm:.1f}x faster')") |"
echo "| runs (ms) | ${native_ms[*]} | ${podman_ms[*]} | |"
echo "| image size, compressed (bytes) | $native_size | $podman_size | |"
echo
echo "The native time includes cargo's no-op check that the binary is up to date, packing, and the"
echo "push (lookup HEAD, blob uploads skipped when present, manifest PUT, tags). Each run uses a new"
echo "commit id, so each run builds and pushes a new image."
