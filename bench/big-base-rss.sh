#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Peak RSS of cargo-gitops itself during `build --build-with native` on a base image holding
# one big incompressible layer (issue 12: the target is under 64 MiB for a 400 MiB layer),
# side by side in one run with a base of one tiny layer, and with the last commit before blobs
# were streamed through the hash to files (OLD_REV). Three ways the base layer travels:
#   copy   - base on another registry (loopback, second port): the layer is downloaded and
#            uploaded again (the path the streaming change is about);
#   mount  - base on the registry pushed to: a cross-repository mount, no layer bytes move;
#   layout - `--output oci:DIR`: the layer is downloaded into the image layout.
# Peak RSS is the VmHWM of the cargo-gitops process read at its ptrace exit stop
# (bench/peak-rss.py): its own high-water mark, not cargo's or rustc's. The wait4 figure
# (/usr/bin/time -v's "Maximum resident set size") is printed beside it for contrast: it is
# the larger of that and the largest waited-for descendant (here cargo's freshness check).
# The fixture's compile is warmed first; each measured build gets a new commit id (so the
# lookup misses and it builds) and the base layer is deleted from the target repository
# first (so the copy or mount really happens).
# Usage: bench/big-base-rss.sh
# Knobs (defaults): RUNS=3 (per scenario and binary, in alternating order) LAYER_MIB=400
#   TINY_KIB=16 LIMIT_MIB=64 KEEP=0 OUT=bench/big-base-rss-results.md
#   GITOPS_BIN= (a built cargo-gitops; default: cargo build --release into $CARGO_TARGET_DIR)
#   OLD_REV=d1bc3f7 (the commit before b1d4db2 "blobs streamed through the hash to a file";
#   OLD=0 skips it) OLD_TARGET_DIR=/work/target-bench-old OLD_BIN= (a built old binary)
# Needs cargo, docker-registry, curl, jq, git, python3, tar, timeout.
set -euo pipefail
RUNS=${RUNS:-3}
LAYER_MIB=${LAYER_MIB:-400}
TINY_KIB=${TINY_KIB:-16}
LIMIT_MIB=${LIMIT_MIB:-64}
OLD=${OLD:-1}
OLD_REV=${OLD_REV:-d1bc3f7}
OLD_TARGET_DIR=${OLD_TARGET_DIR:-/work/target-bench-old}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$root/bench/big-base-rss-results.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
for tool in cargo docker-registry curl jq git python3 tar timeout sha256sum; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done
echo "RUNS=$RUNS LAYER_MIB=$LAYER_MIB TINY_KIB=$TINY_KIB LIMIT_MIB=$LIMIT_MIB OLD=$OLD OLD_REV=$OLD_REV OLD_TARGET_DIR=$OLD_TARGET_DIR OUT=$OUT" >&2
work=$(mktemp -d /tmp/bench-bigbase.XXXXXX)
# shellcheck source=sbs-lib.sh
source "$root/bench/sbs-lib.sh"
trap sbs_cleanup EXIT
unset GITHUB_ACTIONS GITHUB_REF GITHUB_SHA GITHUB_OUTPUT GITHUB_STEP_SUMMARY GITOPS_REGISTRY_USER GITOPS_REGISTRY_PASSWORD SOURCE_DATE_EPOCH
export DOCKER_CONFIG=$work/no-docker-config

# --- binaries ----------------------------------------------------------------------------
bins=(new)
if [[ -n ${GITOPS_BIN:-} ]]; then
  new_bin=$GITOPS_BIN
else
  say "building cargo-gitops (release) at $(git -C "$root" rev-parse --short HEAD)"
  cargo build --quiet --release -p cargo-gitops --manifest-path "$root/Cargo.toml"
  new_bin=$CARGO_TARGET_DIR/release/cargo-gitops
fi
# The commit of the tree, and the last one that changed what the binary is built from.
new_label="current ($(git -C "$root" rev-parse --short HEAD), source of $(git -C "$root" log -1 --format=%h -- cargo-gitops Cargo.toml Cargo.lock))"
if [[ $OLD == 1 ]]; then
  bins+=(old)
  old_label="before ($(git -C "$root" rev-parse --short "$OLD_REV"))"
  if [[ -n ${OLD_BIN:-} ]]; then
    old_bin=$OLD_BIN
  else
    old_src=$OLD_TARGET_DIR/src-$(git -C "$root" rev-parse --short "$OLD_REV")
    if [[ ! -f $old_src/Cargo.toml ]]; then
      mkdir -p "$old_src"
      git -C "$root" archive "$OLD_REV" | tar -x -C "$old_src"
    fi
    say "building cargo-gitops $OLD_REV (release) in $OLD_TARGET_DIR"
    CARGO_TARGET_DIR=$OLD_TARGET_DIR cargo build --quiet --release -p cargo-gitops --manifest-path "$old_src/Cargo.toml"
    old_bin=$OLD_TARGET_DIR/release/cargo-gitops
  fi
fi
bin_of() { if [[ $1 == new ]]; then echo "$new_bin"; else echo "$old_bin"; fi; }
label_of() { if [[ $1 == new ]]; then echo "$new_label"; else echo "$old_label"; fi; }

# --- registries and base images ------------------------------------------------------------
start_registry src
src=$registry_host
start_registry dst
dst=$registry_host

push_blob() { # host repo file -> sha256:…
  local host=$1 repo=$2 file=$3 digest location sep
  digest=sha256:$(sha256sum <"$file" | awk '{print $1}')
  location=$(curl -sf -X POST -D - -o /dev/null "http://$host/v2/$repo/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
  [[ $location == http* ]] || location=http://$host$location
  sep='?'
  [[ $location == *\?* ]] && sep='&'
  curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T "$file" "$location${sep}digest=$digest" -o /dev/null
  echo "$digest"
}
layer_tar() { # name KiB -> path of an uncompressed tar holding one file of random bytes
  local dir=$work/layer-$1
  mkdir -p "$dir/opt"
  head -c "$(($2 * 1024))" /dev/urandom >"$dir/opt/$1.bin"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1654880868 -C "$dir" -cf "$work/$1.tar" opt
  rm -rf "$dir"
  echo "$work/$1.tar"
}
push_base() { # host tar tag -> prints the manifest digest (pinned reference's)
  local host=$1 tar=$2 tag=$3 layer size cfg cfg_digest
  layer=$(push_blob "$host" base "$tar")
  size=$(stat -c %s "$tar")
  cfg=$work/config-$tag.json
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin:/bin"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$layer" >"$cfg"
  cfg_digest=$(push_blob "$host" base "$cfg")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$cfg_digest" "$(stat -c %s "$cfg")" "$layer" "$size" >"$work/manifest-$tag.json"
  curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$work/manifest-$tag.json" "http://$host/v2/base/manifests/$tag" -o /dev/null
  registry_host=$host
  manifest_sha base "$tag"
}
say "making the layers: ${LAYER_MIB} MiB and ${TINY_KIB} KiB of /dev/urandom, one file each, uncompressed tar"
big_tar=$(layer_tar big $((LAYER_MIB * 1024)))
tiny_tar=$(layer_tar tiny "$TINY_KIB")
declare -A layer_digest layer_size base_ref
for size in tiny big; do
  tar_var=${size}_tar
  layer_digest[$size]=sha256:$(sha256sum <"${!tar_var}" | awk '{print $1}')
  layer_size[$size]=$(stat -c %s "${!tar_var}")
  say "pushing base:$size (${layer_size[$size]} bytes of layer) to $src and $dst"
  base_ref[$size-src]=$src/base@$(push_base "$src" "${!tar_var}" "$size")
  base_ref[$size-dst]=$dst/base@$(push_base "$dst" "${!tar_var}" "$size")
done
rm -f "$big_tar" "$tiny_tar"

# --- fixtures: a hello-world crate per (binary, base size, where the base is) -------------
fixture() { # dir image base
  mkdir -p "$1/src"
  cat >"$1/Cargo.toml" <<TOML
[package]
name = "hello"
version = "0.1.0"
edition = "2021"

[workspace]

[package.metadata.gitops]
registry = "$dst"
image = "$2"
base = "$3"
TOML
  printf 'fn main() {\n    println!("hello from a native image");\n}\n' >"$1/src/main.rs"
  printf '/target\n' >"$1/.gitignore"
  (cd "$1" && git init -q -b main && git add -A &&
    GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z \
      git -c user.name=b -c user.email=b@b -c commit.gpgsign=false commit -qm fixture)
}
scenarios=(tiny-copy big-copy tiny-mount big-mount tiny-layout big-layout)
where_of() { case $1 in *-mount) echo dst ;; *) echo src ;; esac; }
n=0
build() { # bin scenario [peak-rss.py] -> runs one build; the commit id is new each time
  local bin=$1 scenario=$2 size=${2%%-*} dir image sha out
  shift 2
  dir=$work/fx-$bin-$size-$(where_of "$scenario")
  image=hello-$bin-$size-$(where_of "$scenario")
  n=$((n + 1))
  sha=$(printf '%040x' $((0xb16ba5e000 + n)))
  cd "$dir"
  case $scenario in
    *-layout)
      out=$work/oci-$n
      timeout 600 "$@" "$(bin_of "$bin")" build -q --build-with native --retag-with builtin \
        --ref refs/heads/main --sha "$sha" --output "oci:$out" >/dev/null
      last_layout=$out
      ;;
    *)
      # The base layer out of the target repository, so that it is copied (or mounted) again.
      curl -s -o /dev/null -X DELETE "http://$dst/v2/$image/blobs/${layer_digest[$size]}" || true
      if [[ $(curl -s -o /dev/null -w '%{http_code}' -I "http://$dst/v2/$image/blobs/${layer_digest[$size]}") != 404 ]]; then
        echo "$0: the base layer is still in $dst/$image" >&2
        exit 1
      fi
      timeout 600 "$@" "$(bin_of "$bin")" build -q --build-with native --retag-with builtin \
        --ref refs/heads/main --sha "$sha" >/dev/null
      last_image=$image last_sha=$sha
      ;;
  esac
  cd "$work"
}
for bin in "${bins[@]}"; do
  for size in tiny big; do
    for where in src dst; do
      fixture "$work/fx-$bin-$size-$where" "hello-$bin-$size-$where" "${base_ref[$size-$where]}"
    done
  done
done

say "warming the fixtures' compiles and checking each scenario's image (not measured)"
for bin in "${bins[@]}"; do
  for scenario in "${scenarios[@]}"; do
    size=${scenario%%-*}
    build "$bin" "$scenario"
    case $scenario in
      *-layout)
        got=$(stat -c %s "$last_layout/blobs/sha256/${layer_digest[$size]#sha256:}")
        [[ $got == "${layer_size[$size]}" ]] || { echo "$0: $bin $scenario: layout lacks the base layer" >&2; exit 1; }
        rm -rf "$last_layout"
        ;;
      *)
        first=$(curl -sf -H "Accept: $accept" "http://$dst/v2/$last_image/manifests/commit-$last_sha" | jq -r '.layers[0].digest')
        [[ $first == "${layer_digest[$size]}" ]] || { echo "$0: $bin $scenario: first layer $first" >&2; exit 1; }
        got=$(curl -sf -I "http://$dst/v2/$last_image/blobs/$first" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-length"{print $2}')
        [[ $got == "${layer_size[$size]}" ]] || { echo "$0: $bin $scenario: base layer not in the target ($got)" >&2; exit 1; }
        ;;
    esac
  done
done
if [[ $OLD == 1 ]]; then
  # The same layer digest read back from a layout the current binary wrote, checked in full once.
  build new big-layout
  sum=sha256:$(sha256sum <"$last_layout/blobs/sha256/${layer_digest[big]#sha256:}" | awk '{print $1}')
  [[ $sum == "${layer_digest[big]}" ]] || { echo "$0: the layout's big layer has digest $sum" >&2; exit 1; }
  rm -rf "$last_layout"
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(busy_pct)
started=$(date -u +%Y-%m-%dT%H:%MZ)
results=$work/results.jsonl
say "measuring: $RUNS rounds x ${#scenarios[@]} scenarios x ${#bins[@]} binaries"
for ((round = 1; round <= RUNS; round++)); do
  order=("${bins[@]}")
  if ((round % 2 == 0)) && ((${#bins[@]} == 2)); then order=(old new); fi
  for scenario in "${scenarios[@]}"; do
    for bin in "${order[@]}"; do
      rm -f "$work/one.json"
      PEAK_RSS_OUT=$work/one.json build "$bin" "$scenario" python3 "$root/bench/peak-rss.py"
      [[ $scenario == *-layout ]] && rm -rf "$last_layout"
      jq -c --arg s "$scenario" --arg b "$bin" --argjson r "$round" '. + {scenario: $s, bin: $b, round: $r}' "$work/one.json" >>"$results"
      say "round $round $scenario $bin: $(jq -r '"\(.self_hwm_kib / 1024 | floor) MiB self, \(.wait4_maxrss_kib / 1024 | floor) MiB wait4, \(.wall_s) s"' "$work/one.json")"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report --------------------------------------------------------------------------------
stats() { # scenario bin -> "median|min|max|wait4 median|wall median" (MiB, MiB, MiB, MiB, s)
  jq -rs --arg s "$1" --arg b "$2" '
    def median: sort | if length % 2 == 1 then .[(length - 1) / 2] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def mib: . / 1024 * 10 | round / 10;
    [.[] | select(.scenario == $s and .bin == $b)] as $r
    | "\([$r[].self_hwm_kib] | median | mib)|\([$r[].self_hwm_kib] | min | mib)|\([$r[].self_hwm_kib] | max | mib)|\([$r[].wait4_maxrss_kib] | median | mib)|\([$r[].wall_s] | median * 100 | round / 100)"' "$results"
}
med() { jq -rs --arg s "$1" --arg b "$2" '[.[] | select(.scenario == $s and .bin == $b) | .self_hwm_kib] | sort | if length % 2 == 1 then .[(length - 1) / 2] else (.[length / 2 - 1] + .[length / 2]) / 2 end' "$results"; }
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
{
  echo "# Peak RSS of a native build on a big base (\`bench/big-base-rss.sh\`)"
  echo
  echo "- Run $started; machine: $(machine)"
  echo "- CPU busy just before: ${busy_before}%; load average before: $load_before, after: $load_after"
  echo "- Command: \`RUNS=$RUNS LAYER_MIB=$LAYER_MIB TINY_KIB=$TINY_KIB OLD=$OLD OLD_REV=$OLD_REV bench/big-base-rss.sh\`"
  echo "- Layers: big ${layer_size[big]} bytes (${LAYER_MIB} MiB of /dev/urandom in an uncompressed tar), tiny ${layer_size[tiny]} bytes; registries: $(docker-registry --version 2>&1 | head -1), src $src, dst $dst"
  echo "- Build: \`cargo-gitops build -q --build-with native --retag-with builtin --ref refs/heads/main --sha <new each run>\` (\`--output oci:DIR\` for layout) in a hello-world crate whose \`base\` is pinned by digest; compile warm"
  echo "- Peak RSS: VmHWM of the cargo-gitops process at its ptrace exit stop (bench/peak-rss.py); wait4 = ru_maxrss as /usr/bin/time reports it (includes cargo); $RUNS runs per row, rounds alternating the binaries' order"
  echo
  echo "| scenario | binary | peak RSS median MiB | min – max MiB | wait4 maxrss median MiB | wall median s | < $LIMIT_MIB MiB |"
  echo "| --- | --- | --: | --: | --: | --: | --- |"
  for scenario in "${scenarios[@]}"; do
    for bin in "${bins[@]}"; do
      IFS='|' read -r m lo hi w t < <(stats "$scenario" "$bin")
      ok=yes
      awk -v m="$m" -v l="$LIMIT_MIB" 'BEGIN { exit !(m >= l) }' && ok=NO
      echo "| $scenario | $(label_of "$bin") | $m | $lo – $hi | $w | $t | $ok |"
    done
  done
  echo
  echo "Ratios of median peak RSS:"
  echo
  for where in copy mount layout; do
    line="- $where: big / tiny, current $(ratio_of "$(med "big-$where" new)" "$(med "tiny-$where" new)")×"
    if [[ $OLD == 1 ]]; then
      line+="; before $(ratio_of "$(med "big-$where" old)" "$(med "tiny-$where" old)")×; big, before / current $(ratio_of "$(med "big-$where" old)" "$(med "big-$where" new)")×"
    fi
    echo "$line"
  done
} >"$OUT"
cat "$OUT"
