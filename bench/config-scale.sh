#!/usr/bin/env bash
# Config scale: loading the configuration must be linear in the number of environments.
# For each N in SIZES, generates in a temporary git repository a configuration with N
# environments (`name = "e<i>"`, `branches = ["b<i>"]`, `format = "e<i>-{sha}-{timestamp}"`,
# i = 1 .. N) and one commit on branch `b<N>`, so the ref resolves to the LAST environment and
# the whole list is scanned; then times `env --format json` of two binaries in ONE hyperfine
# invocation per N (both see the same machine load). A benchmark, not a test: it prints figures
# and does not fail on them.
#
#   baseline  reads Cargo.toml only: the same table as `[workspace]`,
#             `[workspace.metadata.gitops]` (registry, image) and
#             `[[workspace.metadata.gitops.environments]]`, passed with --manifest-path
#   current   reads `gitops.toml` in the repository (top-level `registry`, `image`,
#             `[[environments]]`), found from the current folder as usual
#   current, Cargo.toml   the current binary on the baseline's Cargo.toml (--manifest-path),
#             to tell the file kinds apart (skip with CUR_CARGO=0)
#
# Usage: bench/config-scale.sh BASELINE_BINARY CURRENT_BINARY
# Environment: SIZES ("1000 5000 20000 100000"); runs per N: 20 up to 1,000, 10 up to 5,000,
#              5 up to 20,000, 3 above (override with RUNS); one warm-up run; a command whose
#              check run took over SLOW seconds (60) gets 2 runs and no warm-up at that N.
#              CUR_CARGO (1), BASE_NAME ("baseline"), CUR_NAME ("current"), KEEP=1 keeps the
#              generated repositories (printed).
# Needs: git, hyperfine, jq, awk, GNU time (/usr/bin/time).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="$here/out"
[[ $# -eq 2 ]] || { echo "usage: bench/config-scale.sh BASELINE_BINARY CURRENT_BINARY" >&2; exit 2; }
base=$(realpath "$1")
cur=$(realpath "$2")
for bin in "$base" "$cur"; do
    [[ -x $bin ]] || { echo "bench/config-scale.sh: $bin is not an executable" >&2; exit 1; }
done
SIZES=${SIZES:-"1000 5000 20000 100000"}
SLOW=${SLOW:-60}
CUR_CARGO=${CUR_CARGO:-1}
BASE_NAME=${BASE_NAME:-baseline}
CUR_NAME=${CUR_NAME:-current}
TS=1654880868
for tool in git hyperfine jq awk /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench/config-scale.sh: $tool is missing" >&2; exit 1; }
done
unset GITHUB_ACTIONS GITHUB_REF GITHUB_SHA GITHUB_OUTPUT GITHUB_STEP_SUMMARY \
    GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
g() { git -c user.name=Bench -c user.email=bench@example.com -c init.defaultBranch=main "$@"; }

runs_for() {
    if [[ -n ${RUNS:-} ]]; then echo "$RUNS"
    elif (($1 <= 1000)); then echo 20
    elif (($1 <= 5000)); then echo 10
    elif (($1 <= 20000)); then echo 5
    else echo 3; fi
}

# environments N PREFIX: the N [[PREFIX]] tables
environments() {
    awk -v n="$1" -v table="$2" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "\n[[%s]]\nname = \"e%d\"\nbranches = [\"b%d\"]\nformat = \"e%d-{sha}-{timestamp}\"\n", table, i, i, i
    }'
}

tmp=$(mktemp -d /tmp/config-scale.XXXXXX)
[[ -n ${KEEP:-} ]] || trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
table="$out/config-scale-table.md"
started=$(date -u +%Y-%m-%dT%H:%MZ)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
names=("$BASE_NAME" "$CUR_NAME")
[[ $CUR_CARGO == 1 ]] && names+=("$CUR_NAME, Cargo.toml")
{
    printf "| N | runs |"
    for n in "${names[@]}"; do printf " %s median |" "$n"; done
    printf " ratio %s/%s |" "$CUR_NAME" "$BASE_NAME"
    for n in "${names[@]}"; do printf " %s µs per environment (wall / CPU) |" "$n"; done
    for n in "${names[@]}"; do printf " %s peak RSS |" "$n"; done
    echo
    printf "|---:|---:|"
    for _ in "${names[@]}" x "${names[@]}" "${names[@]}"; do printf -- "---:|"; done
    echo
} >"$table"
declare -A per_env per_cpu

for n in $SIZES; do
    dir="$tmp/n$n"
    repo="$dir/repo"
    mkdir -p "$dir/base"
    g init --quiet "$repo"
    { printf 'registry = "ghcr.io/acme"\nimage = "app"\n'; environments "$n" environments; } >"$repo/gitops.toml"
    {
        printf '[workspace]\nmembers = []\n\n[workspace.metadata.gitops]\nregistry = "ghcr.io/acme"\nimage = "app"\n'
        environments "$n" workspace.metadata.gitops.environments
    } >"$dir/base/Cargo.toml"
    g -C "$repo" checkout --quiet -b "b$n"
    g -C "$repo" add gitops.toml
    g -C "$repo" commit --quiet -m "gitops.toml with $n environments"
    echo "== N=$n: gitops.toml $(du -h "$repo/gitops.toml" | cut -f1), Cargo.toml $(du -h "$dir/base/Cargo.toml" | cut -f1) in $dir" >&2

    cmds=("$base env --format json --manifest-path $dir/base/Cargo.toml"
        "$cur env --format json")
    [[ $CUR_CARGO == 1 ]] && cmds+=("$cur env --format json --manifest-path $dir/base/Cargo.toml")
    cd "$repo"
    # A check run of each: it must pick e<N> and print the same tags; its peak RSS is reported.
    rss=()
    want=""
    slow=0
    for i in "${!cmds[@]}"; do
        # shellcheck disable=SC2086 # a command line
        /usr/bin/time -f "%e %M" -o "$dir/time" ${cmds[$i]} --timestamp "$TS" >"$dir/out.json" 2>"$dir/err" ||
            { echo "${names[$i]} failed at N=$n:" >&2; cat "$dir/err" >&2; exit 1; }
        got=$(jq -c '[.environment, .tags]' "$dir/out.json")
        [[ $(jq -r '.environment' "$dir/out.json") == "e$n" ]] || { echo "${names[$i]} chose $got at N=$n" >&2; exit 1; }
        [[ -z $want || $got == "$want" ]] || { echo "${names[$i]} printed $got, not $want" >&2; exit 1; }
        want=$got
        read -r secs kib <"$dir/time"
        rss+=("$(awk -v k="$kib" 'BEGIN { printf "%.1f MiB", k / 1024 }')")
        awk -v s="$secs" -v slow="$SLOW" 'BEGIN { exit !(s > slow) }' && slow=1
        echo "   ${names[$i]}: check run ${secs} s, $got" >&2
    done
    runs=$(runs_for "$n")
    warmup=1
    if ((slow)); then runs=2 warmup=0; fi
    args=()
    for i in "${!cmds[@]}"; do args+=(--command-name "${names[$i]}" "${cmds[$i]}"); done
    hyperfine -N --style basic --warmup "$warmup" --runs "$runs" \
        --export-json "$out/config-scale-$n.json" "${args[@]}" >&2
    cd "$here"
    medians=()
    cpus=()
    for name in "${names[@]}"; do
        medians+=("$(jq -r --arg name "$name" '.results[] | select(.command == $name) | .median' "$out/config-scale-$n.json")")
        cpus+=("$(jq -r --arg name "$name" '.results[] | select(.command == $name) | .user + .system' "$out/config-scale-$n.json")")
    done
    {
        printf "| %d | %d |" "$n" "$runs"
        for m in "${medians[@]}"; do awk -v s="$m" 'BEGIN { if (s < 1) printf " %.1f ms |", s * 1000; else printf " %.2f s |", s }'; done
        awk -v b="${medians[0]}" -v c="${medians[1]}" 'BEGIN { printf " **%.3f** |", c / b }'
        for i in "${!medians[@]}"; do
            us=$(awk -v s="${medians[$i]}" -v n="$n" 'BEGIN { printf "%.2f", s / n * 1e6 }')
            cpu_us=$(awk -v s="${cpus[$i]}" -v n="$n" 'BEGIN { printf "%.2f", s / n * 1e6 }')
            per_env["$i,$n"]=$us
            per_cpu["$i,$n"]=$cpu_us
            printf " %s / %s |" "$us" "$cpu_us"
        done
        for r in "${rss[@]}"; do printf " %s |" "$r"; done
        echo
    } >>"$table"
done

# Growth: time per environment at the largest N over that at 5,000 (else the smallest N), wall
# (median) and CPU (user + system, mean: less sensitive to other load): about 1 for linear; k for time growing as N^(1 + log(k)/log(N2/N1)).
read -r -a sizes <<<"$SIZES"
from=${sizes[0]}
for s in "${sizes[@]}"; do [[ $s == 5000 ]] && from=5000; done
to=${sizes[${#sizes[@]} - 1]}
if [[ $from != "$to" ]]; then
    {
        echo
        for i in "${!names[@]}"; do
            awk -v name="${names[$i]}" -v a="${per_env[$i,$from]}" -v b="${per_env[$i,$to]}" \
                -v ca="${per_cpu[$i,$from]}" -v cb="${per_cpu[$i,$to]}" -v n1="$from" -v n2="$to" 'BEGIN {
                k = b / a; kc = cb / ca
                printf "- %s: µs per environment at N=%d / at N=%d = %.2f wall (time ∝ N^%.2f between them), %.2f CPU (∝ N^%.2f)\n", name, n2, n1, k, 1 + log(k) / log(n2 / n1), kc, 1 + log(kc) / log(n2 / n1) }'
        done
    } >>"$table"
fi
{
    echo
    echo "Run $started; hyperfine -N, all commands of one N in one invocation (1 warm-up run unless a check run took over $SLOW s); CPU = mean user + system time; peak RSS from one check run (/usr/bin/time -f %M). $(nproc) CPUs ($(lscpu | awk -F': +' '/^Model name/ { print $2 }')); load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)."
} >>"$table"
echo >&2
cat "$table"
