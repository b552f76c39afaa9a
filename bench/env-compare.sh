#!/usr/bin/env bash
# `cargo gitops env` of two binaries side by side (a regression check): the same repositories
# and cases as bench/env.sh (100,000 commits, 10,000 annotated tags, packed and loose refs).
# Each hyperfine invocation times both binaries (and `git rev-parse HEAD` for scale), so that
# both see the same machine load; per case there are ROUNDS such invocations with the order of
# the binaries alternating, and the runs of all rounds are pooled. A benchmark, not a test: it
# prints the medians and the ratio current/baseline, it does not fail on them.
#
# Usage: bench/env-compare.sh BASELINE_BINARY CURRENT_BINARY
#   e.g. bench/env-compare.sh /work/target-bench-base/release/cargo-gitops \
#                             /work/target-bench/release/cargo-gitops
# Environment: COMMITS (100000), TAG_EVERY (10), RUNS (50 per round), ROUNDS (3: hyperfine
#              invocations per case, each with both binaries, their order alternating),
#              WARMUP (5), RSS_RUNS (20),
#              BASE_NAME ("baseline"), CUR_NAME ("current"): the labels in the table.
# The repositories are generated (once, cached in bench/out/) by `ENV_REPO_ONLY=1 bench/env.sh`.
# Cases: those of bench/env.sh (main, feature, detached, detached-loose, actions-loose), and
#   ref-sha   `--ref refs/heads/release/bench --sha <commit of main>`: a ref that is not in the
#             repository. Since b046130 the tool refuses a ref that is not local unless --sha
#             is given too; with --sha both binaries take it as is.
# Each case also checks that both binaries print the same JSON (--timestamp fixed): the same
# value for every key the baseline prints; keys that only the current binary prints are named.
# Needs: git, hyperfine, jq, GNU time (/usr/bin/time), awk; strace for the subprocess check.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out="$here/out"
[[ $# -eq 2 ]] || { echo "usage: bench/env-compare.sh BASELINE_BINARY CURRENT_BINARY" >&2; exit 2; }
base=$(realpath "$1")
cur=$(realpath "$2")
for bin in "$base" "$cur"; do
    [[ -x $bin ]] || { echo "bench/env-compare.sh: $bin is not an executable" >&2; exit 1; }
done
RUNS=${RUNS:-50}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-5}
RSS_RUNS=${RSS_RUNS:-20}
BASE_NAME=${BASE_NAME:-baseline}
CUR_NAME=${CUR_NAME:-current}
TS=1654880868

for tool in git hyperfine jq awk /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench/env-compare.sh: $tool is missing" >&2; exit 1; }
done
read -r repo loose detach_at < <(ENV_REPO_ONLY=1 bash "$here/env.sh")
unset GITHUB_ACTIONS GITHUB_REF GITHUB_SHA GITHUB_OUTPUT GITHUB_STEP_SUMMARY \
    GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
g() { git -c advice.detachedHead=false -c gc.auto=0 "$@"; }

main_sha=$(g -C "$repo" rev-parse main)
# case name, repository, how to place HEAD there, extra arguments to `env`
cases=(
    "main|$repo|checkout --quiet main|"
    "feature|$repo|checkout --quiet feature/login|"
    "detached|$repo|checkout --quiet --detach $detach_at|"
    "detached-loose|$loose|checkout --quiet --detach $detach_at|"
    "ref-sha|$repo|checkout --quiet main|--ref refs/heads/release/bench --sha $main_sha"
)

median_rss() { # command...; prints the median peak RSS in KiB over RSS_RUNS runs
    local file
    file=$(mktemp)
    for ((k = 0; k < RSS_RUNS; k++)); do
        /usr/bin/time -f %M -o "$file" "$@" >/dev/null
        cat "$file"
    done | sort -n | awk '{ v[NR] = $1 } END {
        printf "%d\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
    rm -f "$file"
}
# pooled NAME median|min|max|cpu FILE...: over the runs of NAME in all the hyperfine JSON
# files; cpu is the mean user + system time (less sensitive than wall time to other load).
pooled() {
    local name=$1 what=$2
    shift 2
    jq -rs --arg name "$name" --arg what "$what" '
        [.[].results[] | select(.command == $name)] as $r
        | ([$r[].times[]] | sort) as $t
        | if $what == "median" then
              (if ($t | length) % 2 == 1 then $t[($t | length - 1) / 2]
               else ($t[($t | length) / 2 - 1] + $t[($t | length) / 2]) / 2 end)
          elif $what == "min" then $t[0]
          elif $what == "max" then $t[-1]
          else ([$r[] | .user + .system] | add / length) end' "$@"
}
ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

table="$out/env-compare-table.md"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%MZ)
{
    echo "| case | environment → first tag | $BASE_NAME median | $CUR_NAME median | ratio $CUR_NAME/$BASE_NAME | $BASE_NAME min … max | $CUR_NAME min … max | CPU (user + sys, mean) $BASE_NAME / $CUR_NAME (ratio) | peak RSS $BASE_NAME / $CUR_NAME (median) | \`git rev-parse HEAD\` median | same JSON |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
} >"$table"

measure() { # case name, repository, git arguments that place HEAD, extra env arguments
    local name=$1 dir=$2 place=$3 extra=$4 json_base json_cur summary same file b c ratio
    # shellcheck disable=SC2086 # $place and $extra are argument lists
    g -C "$dir" $place
    cd "$dir"
    # shellcheck disable=SC2086
    json_base=$("$base" env --format json --timestamp "$TS" $extra)
    # shellcheck disable=SC2086
    json_cur=$("$cur" env --format json --timestamp "$TS" $extra)
    # Same JSON: every key of the baseline's object has the same value in the current one;
    # keys only the current binary prints are listed.
    local added
    rm -f "$out/env-compare-$name.diff"
    added=$(jq -nr --argjson b "$json_base" --argjson c "$json_cur" '[$c | keys[] | select(. as $k | $b | has($k) | not)] | join(", ")')
    if [[ $(jq -nS --argjson b "$json_base" --argjson c "$json_cur" '$c | with_entries(select(.key as $k | $b | has($k)))') == "$(jq -S . <<<"$json_base")" ]]; then
        same=yes
    else
        same="no (see bench/out/env-compare-$name.diff)"
        diff <(jq -S . <<<"$json_base") <(jq -S . <<<"$json_cur") >"$out/env-compare-$name.diff" || true
    fi
    [[ -z $added ]] || same="$same; $CUR_NAME adds ${added}"
    summary="$(jq -r '.environment' <<<"$json_cur") → $(jq -r '.tags[0]' <<<"$json_cur")"
    echo "== $name: $summary (same JSON: $same)" >&2

    # ROUNDS invocations, each timing all three commands; the order of the two binaries
    # alternates from round to round so that neither always runs in the same slot of a
    # fluctuating load. Medians, minima and maxima are over the runs of all rounds pooled.
    local r files=()
    for ((r = 1; r <= ROUNDS; r++)); do
        file="$out/env-compare-$name-$r.json"
        files+=("$file")
        local first=(--command-name "$BASE_NAME" "$base env --format json $extra")
        local second=(--command-name "$CUR_NAME" "$cur env --format json $extra")
        if ((r % 2 == 0)); then
            local t=("${first[@]}")
            first=("${second[@]}") second=("${t[@]}")
        fi
        echo "-- round $r of $ROUNDS" >&2
        hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$file" \
            "${first[@]}" "${second[@]}" \
            --command-name "git rev-parse HEAD" "git rev-parse HEAD" >&2
    done
    b=$(pooled "$BASE_NAME" median "${files[@]}")
    c=$(pooled "$CUR_NAME" median "${files[@]}")
    ratio=$(awk -v b="$b" -v c="$c" 'BEGIN { printf "%.2f", c / b }')
    local mm_base mm_cur cpu_base cpu_cur
    mm_base="$(ms "$(pooled "$BASE_NAME" min "${files[@]}")") … $(ms "$(pooled "$BASE_NAME" max "${files[@]}")")"
    mm_cur="$(ms "$(pooled "$CUR_NAME" min "${files[@]}")") … $(ms "$(pooled "$CUR_NAME" max "${files[@]}")")"
    cpu_base=$(pooled "$BASE_NAME" cpu "${files[@]}")
    cpu_cur=$(pooled "$CUR_NAME" cpu "${files[@]}")
    local rss_base rss_cur
    # shellcheck disable=SC2086
    rss_base=$(median_rss "$base" env --format json $extra)
    # shellcheck disable=SC2086
    rss_cur=$(median_rss "$cur" env --format json $extra)
    echo "| $name | $summary | $(ms "$b") ms | $(ms "$c") ms | **$ratio** | $mm_base ms | $mm_cur ms | $(ms "$cpu_base") / $(ms "$cpu_cur") ms ($(awk -v b="$cpu_base" -v c="$cpu_cur" 'BEGIN { printf "%.2f", c / b }')) | $(mib "$rss_base") / $(mib "$rss_cur") MiB | $(ms "$(pooled "git rev-parse HEAD" median "${files[@]}")") ms | $same |" >>"$table"
    cd "$root"
}

for entry in "${cases[@]}"; do
    IFS='|' read -r name dir place extra <<<"$entry"
    measure "$name" "$dir" "$place" "$extra"
done
(
    export GITHUB_ACTIONS=true GITHUB_REF="refs/tags/$detach_at"
    GITHUB_SHA=$(g -C "$loose" rev-parse "$detach_at^{commit}")
    export GITHUB_SHA
    measure actions-loose "$loose" "checkout --quiet --detach $detach_at" ""
)

if command -v strace >/dev/null; then
    echo >>"$table"
    for pair in "$BASE_NAME|$base" "$CUR_NAME|$cur"; do
        IFS='|' read -r label bin <<<"$pair"
        trace="$out/env-compare-strace-$label.txt"
        (cd "$loose" && strace -f -qq -e trace=execve,fork,vfork,clone,clone3 -o "$trace" "$bin" env --format json >/dev/null)
        echo "Processes started by one \`env\` of $label (strace -f, detached-loose): execve $(grep -c 'execve(' "$trace") (itself), fork/clone of a process $(grep -E '(v?fork|clone3?)\(' "$trace" | grep -vc CLONE_THREAD), threads started $(grep -E 'clone3?\(' "$trace" | grep -c CLONE_THREAD)." >>"$table"
    done
fi
{
    echo
    echo "Run $started; per case $ROUNDS hyperfine -N invocations of the three commands (order of the two binaries alternating), each $RUNS runs after $WARMUP warm-up runs per command; medians, min and max over the $((ROUNDS * RUNS)) runs pooled; RSS median over $RSS_RUNS runs. $(nproc) CPUs ($(lscpu | awk -F': +' '/^Model name/ { print $2 }')); load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)."
} >>"$table"
echo >&2
cat "$table"
