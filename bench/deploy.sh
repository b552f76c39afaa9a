#!/usr/bin/env bash
# `cargo gitops deploy` of 1 and of 20 images into a manifests repository with 10,000 commits,
# served by a real `git daemon` on loopback, side by side with the shell baseline a pipeline
# would otherwise run (git clone + sed + git commit + git push), each run writing a change.
#
#     RUNS=7 COMMITS=10000 BIN=target/debug/cargo-gitops bench/deploy.sh
#
# The history is made with `git fast-import` (one small file changed per commit); the images
# are pushed to a Debian docker-registry on loopback as `build` leaves them (lookup tag and
# staging tag), for two source commits A and B, and the runs alternate between them so that
# every run moves every image. Runs of the four scenarios are interleaved; medians are printed
# as a Markdown table (also to bench/deploy-results.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
RUNS=${RUNS:-7}
COMMITS=${COMMITS:-10000}
IMAGES=20
BIN=${BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/cargo-gitops}
TS=1654880868
work="$(mktemp -d)"
daemon_pid=""
# shellcheck source=sbs-lib.sh
source "$here/sbs-lib.sh"
cleanup() {
  [[ -n $daemon_pid ]] && { kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; }
  sbs_cleanup
}
trap cleanup EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
[[ -x $BIN ]] || { echo "no binary at $BIN; build it or set BIN" >&2; exit 1; }

start_registry reg
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/git"
# git-daemon itself: killing the `git daemon` wrapper would leave its child running.
"$(git --exec-path)/git-daemon" --reuseaddr --export-all --enable=receive-pack --listen=127.0.0.1 --port="$port" \
  --base-path="$work/git" "$work/git" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
fleet="git://127.0.0.1:$port/fleet.git"

say "making the fleet: $COMMITS commits with git fast-import"
git init --quiet --bare "$work/git/fleet.git"
kustomization() {
  printf 'resources: []\nimages:\n'
  for i in $(seq -w 1 $IMAGES); do
    printf '  - name: %s/img%s # img%s\n    newTag: old\n' "$registry_host" "$i" "$i"
  done
}
python3 - "$COMMITS" "$(kustomization)" <<'PY' | git --git-dir="$work/git/fleet.git" fast-import --quiet
import sys
commits, kust = int(sys.argv[1]), sys.argv[2] + "\n"
out = sys.stdout
for n in range(1, commits + 1):
    msg = f"change {n}\n"
    out.write(f"commit refs/heads/main\ncommitter bench <bench@example.com> {1600000000 + n} +0000\n")
    out.write(f"data {len(msg)}\n{msg}")
    body = f"change {n}\n"
    out.write(f"M 100644 inline history/{n % 100:02d}.txt\ndata {len(body)}\n{body}")
    if n == commits:
        out.write(f"M 100644 inline apps/staging/kustomization.yaml\ndata {len(kust.encode())}\n{kust}")
    out.write("\n")
PY
git --git-dir="$work/git/fleet.git" symbolic-ref HEAD refs/heads/main

say "making the source repository and the images of commits A and B"
src="$work/src"
git init --quiet -b main "$src"
{
  printf 'registry = "%s"\n\n[deploy]\nrepository = "%s"\npath = "apps/{environment}"\nmode = "push"\n\n' "$registry_host" "$fleet"
  for i in $(seq -w 1 $IMAGES); do printf '[images.img%s]\n' "$i"; done
} >"$src/gitops.toml"
git -C "$src" add gitops.toml
git -C "$src" commit --quiet -m A
sha_a=$(git -C "$src" rev-parse HEAD)
git -C "$src" commit --quiet --allow-empty -m B
sha_b=$(git -C "$src" rev-parse HEAD)

put_blob() { # name bytes-file -> digest
  local name=$1 file=$2 digest location
  digest="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
  location=$(curl -sf -X POST -D - -o /dev/null "http://$registry_host/v2/$name/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
  case $location in http*) ;; *) location="http://$registry_host$location" ;; esac
  curl -sf -X PUT --data-binary "@$file" -H 'Content-Type: application/octet-stream' "$location&digest=$digest" -o /dev/null \
    || curl -sf -X PUT --data-binary "@$file" -H 'Content-Type: application/octet-stream' "$location?digest=$digest" -o /dev/null
  echo "$digest"
}
declare -A tag_of
for sha in "$sha_a" "$sha_b"; do
  for i in $(seq -w 1 $IMAGES); do
    name="img$i"
    json=$(cd "$src" && "$BIN" -p "$name" --ref main --sha "$sha" --timestamp $TS env --format json)
    tag=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["tags"][0])' <<<"$json")
    lookup="commit-$sha"
    printf '%s %s' "$name" "$sha" >"$work/layer"
    layer=$(put_blob "$name" "$work/layer")
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}' "$layer" >"$work/config"
    config=$(put_blob "$name" "$work/config")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
      "$config" "$(stat -c %s "$work/config")" "$layer" "$(stat -c %s "$work/layer")" >"$work/manifest"
    for t in "$lookup" "$tag"; do
      curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$work/manifest" \
        "http://$registry_host/v2/$name/manifests/$t" -o /dev/null
    done
    tag_of[$sha]=$tag
    echo "sha256:$(sha256sum "$work/manifest" | cut -d' ' -f1)" >"$work/digest-$name-$sha"
  done
done

# The tool's first deploy (untimed) adds the digest lines the baseline then edits.
(cd "$src" && "$BIN" -q --ref main --sha "$sha_a" deploy >/dev/null)

tool() { # images sha
  if [[ $1 == 1 ]]; then
    (cd "$src" && "$BIN" -q -p img01 --ref main --sha "$2" deploy >/dev/null)
  else
    (cd "$src" && "$BIN" -q --ref main --sha "$2" deploy >/dev/null)
  fi
}
baseline() { # images sha
  local d="$work/baseline-clone" script="" i
  rm -rf "$d"
  git clone --quiet --single-branch --branch main "$fleet" "$d"
  for i in $(seq 1 "$1"); do
    i=$(printf %02d "$i")
    script+="/name: .*\/img$i # img$i\$/,/digest:/{s|newTag: .*|newTag: ${tag_of[$2]}|;s|digest: .*|digest: $(cat "$work/digest-img$i-$2")|};"
  done
  sed -i "$script" "$d/apps/staging/kustomization.yaml"
  git -C "$d" commit --quiet -am "deploy staging: $1 images of ${2:0:7}"
  git -C "$d" push --quiet origin main
}

declare -A durations
now() { date +%s.%N; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "measuring: $RUNS runs of each scenario, interleaved"
sha=$sha_b
for run in $(seq "$RUNS"); do
  for scenario in tool-1 baseline-1 tool-20 baseline-20; do
    kind=${scenario%-*}; n=${scenario#*-}
    # Each run moves the images to the other commit, so that every run writes a change.
    start=$(now); "$kind" "$n" "$sha"; end=$(now)
    durations[$scenario]+="$(python3 -c "print($end - $start)") "
    [[ $sha == "$sha_a" ]] && sha=$sha_b || sha=$sha_a
  done
done
commits_now=$(git --git-dir="$work/git/fleet.git" rev-list --count main)

median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.3f} {min(v):.3f} {max(v):.3f}")' "$@"; }
{
  echo "# \`cargo gitops deploy\` against clone + sed + commit + push (\`bench/deploy.sh\`)"
  echo
  echo "- Run $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(uname -sr)"
  echo "- Load average (1, 5, 15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- Command: \`RUNS=$RUNS COMMITS=$COMMITS BIN=$BIN bench/deploy.sh\`; binary: $("$BIN" --version) ($(file -b "$BIN" | grep -q 'not stripped' && echo 'debug build' || echo 'release build')), git $(git --version | cut -d' ' -f3)"
  echo "- Manifests: $COMMITS commits made with git fast-import ($commits_now after the runs), one kustomization.yaml with $IMAGES images, on git daemon at 127.0.0.1; registry: docker-registry on 127.0.0.1"
  echo "- Each run clones, edits, commits and pushes one change; the tool also reads two registry tags per image and the history for its digests"
  echo
  echo "| images | cargo gitops deploy median s (min – max) | clone + sed + commit + push median s (min – max) | deploy / baseline |"
  echo "| --: | --: | --: | --: |"
  for n in 1 20; do
    read -r tm tl th <<<"$(median ${durations[tool-$n]})"
    read -r bm bl bh <<<"$(median ${durations[baseline-$n]})"
    echo "| $n | $tm ($tl – $th) | $bm ($bl – $bh) | $(python3 -c "print(f'{$tm / $bm:.2f}x')") |"
  done
} | tee "$here/deploy-results.md"
