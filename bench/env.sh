#!/usr/bin/env bash
# How fast `cargo gitops env` is, and how much memory it takes, on a large repository:
# 100,000 commits and 10,000 annotated SemVer tags. A benchmark, not a test: it prints figures
# and the targets beside them (median <= 25 ms wall, <= 30 MB peak RSS), it does not fail on them.
#
# The repository is generated once with `git fast-import` and cached in bench/out/ (gitignored);
# delete bench/out/env-repo* to regenerate. Cases:
#   main        HEAD on branch `main`                        (no tag is read)
#   feature     HEAD on branch `feature/login`               (no tag is read)
#   detached    detached HEAD at a tag, refs packed          (all 10,000 tags scanned; peeled
#               commits come from packed-refs, as after `git clone`)
#   detached-loose  the same, with 10,000 loose tag refs     (as `git fetch` leaves them, e.g.
#               actions/checkout with fetch-depth: 0: each ref file and tag object is read)
#   actions-loose   the loose repository with GITHUB_ACTIONS=true, GITHUB_REF and GITHUB_SHA set,
#               as in a workflow (the ref comes from the runner: no tag is read)
# Beside each, for scale, on the same repository: `git rev-parse HEAD` and, at a tag,
# `git describe --tags --exact-match`.
#
# Usage: bench/env.sh
# Environment: COMMITS (100000), TAG_EVERY (10), RUNS (50), WARMUP (5), RSS_RUNS (20),
#              CARGO_GITOPS (path to a prebuilt binary: skips `cargo build --release`),
#              ENV_REPO_ONLY=1 (generate and check the repositories, then exit: used by
#              bench/env-compare.sh, which times two binaries side by side on them).
# Needs: git, hyperfine, jq, GNU time (/usr/bin/time), awk; strace for the subprocess check.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out="$here/out"
COMMITS=${COMMITS:-100000}
TAG_EVERY=${TAG_EVERY:-10}
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
RSS_RUNS=${RSS_RUNS:-20}
TS=1654880868

for tool in git hyperfine jq awk /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench/env.sh: $tool is missing" >&2; exit 1; }
done
# The tool reads these; a benchmark run inside CI must still measure the local-git path.
unset GITHUB_ACTIONS GITHUB_REF GITHUB_SHA GITHUB_OUTPUT GITHUB_STEP_SUMMARY \
    GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null

# git with a fixed identity and none of the user's configuration.
g() {
    git -c user.name=Bench -c user.email=bench@example.com -c init.defaultBranch=main \
        -c advice.detachedHead=false -c gc.auto=0 "$@"
}

# The name of the n-th tag (n = 1 .. COMMITS/TAG_EVERY): v0.0.1 ... v0.10.0.
tag_name() { echo "v0.$(($1 / 1000)).$(($1 % 1000))"; }

manifest='[workspace]
members = []

[workspace.metadata.gitops]
registry = "ghcr.io/bench"
image = "bench-app"

[[workspace.metadata.gitops.environments]]
name = "production"

[[workspace.metadata.gitops.environments]]
name = "staging"

[[workspace.metadata.gitops.environments]]
name = "development"
'

# A fast-import stream: COMMITS commits on main, each changing one small file (the first also
# adds Cargo.toml), and an annotated tag on every TAG_EVERY-th commit.
fast_import_stream() {
    MANIFEST="$manifest" awk -v n="$COMMITS" -v every="$TAG_EVERY" 'BEGIN {
        manifest = ENVIRON["MANIFEST"]
        for (i = 1; i <= n; i++) {
            t = 1600000000 + i
            print "commit refs/heads/main"
            print "mark :" i
            printf "author Bench <bench@example.com> %d +0000\n", t
            printf "committer Bench <bench@example.com> %d +0000\n", t
            msg = "commit " i "\n"
            printf "data %d\n%s", length(msg), msg
            if (i == 1) printf "M 644 inline Cargo.toml\ndata %d\n%s\n", length(manifest), manifest
            body = "counter " i "\n"
            printf "M 644 inline counter.txt\ndata %d\n%s\n", length(body), body
            if (i % every == 0) {
                k = i / every
                printf "tag v0.%d.%d\nfrom :%d\n", int(k / 1000), k % 1000, i
                printf "tagger Bench <bench@example.com> %d +0000\n", t
                msg = "release " k "\n"
                printf "data %d\n%s\n", length(msg), msg
            }
        }
    }'
}

repo="$out/env-repo"
loose="$out/env-repo-loose"
stamp="$out/env-repo.done-$COMMITS-$TAG_EVERY"
mkdir -p "$out"
if [[ ! -e $stamp ]]; then
    echo "== generating $COMMITS commits, $((COMMITS / TAG_EVERY)) tags in $repo" >&2
    rm -rf "$repo" "$loose" "$out"/env-repo.done-*
    start=$SECONDS
    g init --quiet "$repo"
    fast_import_stream | g -C "$repo" fast-import --quiet
    g -C "$repo" checkout --quiet --force main
    g -C "$repo" branch feature/login main~1
    # One pack in the order pack-objects writes (as a clone or fetch receives it).
    g -C "$repo" repack -a -d -q
    # fast-import leaves loose refs: keep that layout in a copy, then pack the refs.
    cp -a "$repo" "$loose"
    g -C "$repo" pack-refs --all
    echo "== generated in $((SECONDS - start)) s" >&2
    touch "$stamp"
fi
tags=$((COMMITS / TAG_EVERY))
detach_at=$(tag_name $((tags / 2)))
[[ $(g -C "$repo" rev-list --count main) == "$COMMITS" ]] || { echo "bad commit count" >&2; exit 1; }
[[ $(g -C "$repo" tag | wc -l) == "$tags" ]] || { echo "bad tag count" >&2; exit 1; }
[[ $(find "$loose/.git/refs/tags" -type f | wc -l) == "$tags" ]] || { echo "loose tags are not loose" >&2; exit 1; }
[[ ! -e $repo/.git/refs/tags/$detach_at ]] || { echo "packed tags are not packed" >&2; exit 1; }
if [[ -n ${ENV_REPO_ONLY:-} ]]; then
    echo "$repo $loose $detach_at"
    exit 0
fi

if [[ -n ${CARGO_GITOPS:-} ]]; then
    bin=$CARGO_GITOPS
else
    echo "== cargo build --release -p cargo-gitops" >&2
    (cd "$root" && cargo build --release --quiet -p cargo-gitops)
    bin="$root/target/release/cargo-gitops"
fi

# case name, repository, how to place HEAD there
cases=(
    "main|$repo|checkout --quiet main"
    "feature|$repo|checkout --quiet feature/login"
    "detached|$repo|checkout --quiet --detach $detach_at"
    "detached-loose|$loose|checkout --quiet --detach $detach_at"
)

median_and_max_rss() { # command...; prints "median max" of peak RSS in KiB over RSS_RUNS runs
    local file
    file=$(mktemp)
    for ((k = 0; k < RSS_RUNS; k++)); do
        /usr/bin/time -f %M -o "$file" "$@" >/dev/null
        cat "$file"
    done | sort -n | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%d %d\n", m, v[NR] }'
    rm -f "$file"
}

ms() { jq -r --arg name "$2" '.results[] | select(.command == $name) | .median * 1000 | . * 100 | round / 100' "$1"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

table="$out/env-table.md"
{
    echo "| case | environment → first tag | \`cargo-gitops env\` median | min … max | peak RSS median / max | \`git rev-parse HEAD\` median | \`git describe --tags --exact-match\` median |"
    echo "|---|---|---:|---:|---:|---:|---:|"
} >"$table"

measure() { # case name, repository, git arguments that place HEAD
    local name=$1 dir=$2 place=$3 json summary describe min_max rss_median rss_max
    # shellcheck disable=SC2086 # $place is a git argument list
    g -C "$dir" $place
    cd "$dir"
    json=$("$bin" env --format json --timestamp "$TS")
    summary="$(jq -r '.environment' <<<"$json") → $(jq -r '.tags[0]' <<<"$json")"
    echo "== $name: $summary" >&2

    local commands=(--command-name "cargo-gitops env" "$bin env --format json"
        --command-name "git rev-parse HEAD" "git rev-parse HEAD")
    if [[ $name == detached* || $name == actions* ]]; then
        commands+=(--command-name "git describe" "git describe --tags --exact-match")
    fi
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" \
        --export-json "$out/env-$name.json" "${commands[@]}" >&2

    read -r rss_median rss_max < <(median_and_max_rss "$bin" env --format json)
    min_max=$(jq -r '.results[0] | "\(.min * 1000 * 100 | round / 100) … \(.max * 1000 * 100 | round / 100)"' "$out/env-$name.json")
    describe="–"
    [[ ${#commands[@]} -gt 6 ]] && describe="$(ms "$out/env-$name.json" "git describe") ms"
    echo "| $name | $summary | $(ms "$out/env-$name.json" "cargo-gitops env") ms | $min_max ms | $(mib "$rss_median") / $(mib "$rss_max") MiB | $(ms "$out/env-$name.json" "git rev-parse HEAD") ms | $describe |" >>"$table"
    cd "$root"
}

for entry in "${cases[@]}"; do
    IFS='|' read -r name dir place <<<"$entry"
    measure "$name" "$dir" "$place"
done
# In GitHub Actions the ref and sha come from the runner: no tag is read, even with 10,000
# loose tags (actions/checkout with fetch-depth: 0 leaves them loose).
(
    export GITHUB_ACTIONS=true GITHUB_REF="refs/tags/$detach_at"
    GITHUB_SHA=$(g -C "$loose" rev-parse "$detach_at^{commit}")
    export GITHUB_SHA
    measure actions-loose "$loose" "checkout --quiet --detach $detach_at"
)

# The tool should run no other program: count process creations under strace.
if command -v strace >/dev/null; then
    trace="$out/env-strace.txt"
    (cd "$loose" && strace -f -qq -e trace=execve,fork,vfork,clone,clone3 -o "$trace" "$bin" env --format json >/dev/null)
    echo >>"$table"
    echo "Processes started by one \`cargo-gitops env\` (strace -f, detached-loose case): execve $(grep -c 'execve(' "$trace") (itself), fork/clone of a process $(grep -E '(v?fork|clone3?)\(' "$trace" | grep -vc CLONE_THREAD), threads started $(grep -E 'clone3?\(' "$trace" | grep -c CLONE_THREAD)." >>"$table"
fi

echo >&2
echo "Targets: median <= 25 ms wall, <= 30 MB peak RSS. $RUNS runs after $WARMUP warm-up runs (hyperfine -N); RSS over $RSS_RUNS runs (/usr/bin/time -f %M)." >&2
cat "$table"
