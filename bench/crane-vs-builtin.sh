#!/usr/bin/env bash
# crane (go-containerregistry) against cargo-gitops' built-in registry client, side by side in
# one run, on one Debian docker-registry on 127.0.0.1 with an access log: (a) lookup of a tag,
# (b) same-repository promotion to 3 tags, (c) cross-repository promotion to 3 tags; requests
# per operation counted from the access log (as bench/registry.sh counts them), wall time
# (hyperfine medians), and whether each promoted tag serves the source manifest byte for byte.
# The library driver runs the same Retagger the CLI runs, kind Builtin or Crane (crane digest;
# crane tag per tag in one repository, crane copy per tag across repositories).
# Usage: bench/crane-vs-builtin.sh   Knobs: RUNS=15 KEEP=0 OUT=bench/crane-vs-builtin-results.md
# Needs crane on PATH (export PATH=$HOME/.cache/cargo-gitops-tools/bin:$PATH), cargo,
# docker-registry, hyperfine, curl, jq, git, python3.
set -euo pipefail
RUNS=${RUNS:-15}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$root/bench/crane-vs-builtin-results.md}
target_dir=${CARGO_TARGET_DIR:-$root/target}
for tool in cargo crane docker-registry hyperfine curl jq git python3 timeout; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done
work=$(mktemp -d /tmp/bench-crane.XXXXXX)
source "$root/bench/sbs-lib.sh"
trap sbs_cleanup EXIT

say "building cargo-gitops and the driver (release)"
cargo build --quiet --release -p cargo-gitops --manifest-path "$root/Cargo.toml"
gitops=$target_dir/release/cargo-gitops
mkdir -p "$work/driver/src"
cat >"$work/driver/Cargo.toml" <<TOML
[package]
name = "crane-bench-driver"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
cargo-gitops = { path = "$root/cargo-gitops" }

[workspace]

[profile.release]
lto = "thin"
codegen-units = 1
strip = true
TOML
cp "$root/Cargo.lock" "$work/driver/Cargo.lock"
cat >"$work/driver/src/main.rs" <<'RS'
//! `driver builtin|crane retag SOURCE DIGEST TARGET TAG...` or `driver KIND lookup REPO TAG`.
use cargo_gitops::build::retag::Retagger;
use cargo_gitops::config::RetaggerKind;
use cargo_gitops::registry::options::ClientOptions;
use cargo_gitops::registry::reference::Repository;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind = match args[0].as_str() {
        "builtin" => RetaggerKind::Builtin,
        "crane" => RetaggerKind::Crane,
        other => panic!("unknown kind {other}"),
    };
    let retagger = Retagger::new(kind, ClientOptions::default(), None);
    let repository = |text: &str| Repository::parse(text).expect("a repository");
    let result = match args.get(1).map(String::as_str) {
        Some("retag") => retagger.retag(&repository(&args[2]), &args[3], &repository(&args[4]), &args[5..]),
        Some("lookup") => retagger
            .lookup(&repository(&args[2]), &args[3])
            .map(|digest| println!("{}", digest.unwrap_or_else(|| "none".to_owned()))),
        _ => panic!("usage: driver KIND retag SOURCE DIGEST TARGET TAG... | KIND lookup REPOSITORY TAG"),
    };
    if let Err(err) = result {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}
RS
cargo build --quiet --release --manifest-path "$work/driver/Cargo.toml" --target-dir "$target_dir"
driver=$target_dir/release/crane-bench-driver

start_registry open
host=$registry_host

# Fixture git repository whose Cargo.toml points at the registry (as bench/registry.sh).
mkdir -p "$work/fixture"
printf '[workspace]\n\n[workspace.metadata.gitops]\nregistry = "%s"\nimage = "app"\n' "$host" >"$work/fixture/Cargo.toml"
git -C "$work/fixture" init -q -b main
git -C "$work/fixture" add -A
git -C "$work/fixture" -c user.name=bench -c user.email=bench@example.com -c commit.gpgsign=false commit -q -m bench
sha=$(git -C "$work/fixture" rev-parse HEAD)
lookup=commit-$sha
export DOCKER_CONFIG=$work/no-docker-config
unset GITHUB_ACTIONS GITHUB_REF GITHUB_SHA GITHUB_OUTPUT GITHUB_STEP_SUMMARY GITOPS_REGISTRY_USER GITOPS_REGISTRY_PASSWORD

say "pushing a test image with crane append (one 256 KiB layer on an empty base)"
mkdir -p "$work/layer/srv"
head -c 262144 /dev/urandom >"$work/layer/srv/payload"
tar -C "$work/layer" --owner=0 --group=0 --mtime=@0 -cf "$work/layer.tar" srv
crane append --insecure -f "$work/layer.tar" -t "$host/app:$lookup" >/dev/null
# Labelled with its commit, as the tool's own builds are: a build checks it before retagging.
crane mutate --insecure -l "org.opencontainers.image.revision=$sha" -t "$host/app:$lookup" \
  "$host/app:$lookup" >/dev/null
crane copy --insecure "$host/app:$lookup" "$host/app-staging:$lookup" >/dev/null
digest=$(crane digest --insecure "$host/app:$lookup")
media_type=$(curl -sf -H "Accept: $accept" "http://$host/v2/app/manifests/$lookup" | jq -r .mediaType)
blobs=$(crane manifest --insecure "$host/app:$lookup" | jq '[.config] + .layers | length')
say "image $digest ($media_type, $blobs blobs)"

checks=()
check_tags() { # label repo tag...
  local label=$1 repo=$2 tag ok=yes
  shift 2
  for tag in "$@"; do [[ $(manifest_sha "$repo" "$tag") == "$digest" ]] || ok=NO; done
  checks+=("| $label | $repo:{$(IFS=,; echo "$*")} | $ok |")
}
tags3=(prd-1.0.0 prd-1.0 prd-latest)

busy_before=$(busy_pct)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# (a) lookup
say "(a) lookup"
count "lookup of $lookup" "built-in (library, HEAD)" "$driver" builtin lookup "$host/app" "$lookup"
count "lookup of $lookup" "crane digest (library, kind Crane)" "$driver" crane lookup "$host/app" "$lookup"
count "lookup of $lookup" "crane digest --insecure (direct)" crane digest --insecure "$host/app:$lookup"
cli() { (cd "$work/fixture" && "$gitops" build --retag-with "$1" --ref refs/tags/v1.0.0 --sha "$sha" -q); }
count "CLI: lookup + 2 tags (refs/tags/v1.0.0)" "cargo-gitops --retag-with builtin" cli builtin
check_tags "CLI --retag-with builtin" app prd-1.0.0 prd-latest
count "CLI: lookup + 2 tags (refs/tags/v1.0.0)" "cargo-gitops --retag-with crane" cli crane
check_tags "CLI --retag-with crane" app prd-1.0.0 prd-latest
timeit "lookup" \
  "built-in (library)" "$driver builtin lookup $host/app $lookup" \
  "crane digest --insecure" "crane digest --insecure $host/app:$lookup"
lookup_json=$last_json
timeit "CLI: lookup + 2 tags" \
  "cargo-gitops --retag-with builtin" "cd $work/fixture && $gitops build --retag-with builtin --ref refs/tags/v1.0.0 --sha $sha -q" \
  "cargo-gitops --retag-with crane" "cd $work/fixture && $gitops build --retag-with crane --ref refs/tags/v1.0.0 --sha $sha -q"
cli_json=$last_json

# (b) same repository, 3 tags
say "(b) same-repository promotion to 3 tags"
count "same repository, 3 tags" "built-in (library)" "$driver" builtin retag "$host/app" "$digest" "$host/app" "${tags3[@]}"
check_tags "same repo, built-in" app "${tags3[@]}"
count "same repository, 3 tags" "crane tag ×3 (library, kind Crane)" "$driver" crane retag "$host/app" "$digest" "$host/app" b-1.0.0 b-1.0 b-latest
check_tags "same repo, crane tag" app b-1.0.0 b-1.0 b-latest
timeit "same repository, 3 tags (tags reused every run)" \
  "built-in (library)" "$driver builtin retag $host/app $digest $host/app ${tags3[*]}" \
  "crane tag ×3" "$driver crane retag $host/app $digest $host/app ${tags3[*]}"
same_json=$last_json

# (c) across repositories, a new target repository each run
say "(c) cross-repository promotion to 3 tags"
count "app-staging → new repository, 3 tags" "built-in (library)" "$driver" builtin retag "$host/app-staging" "$digest" "$host/count-builtin" "${tags3[@]}"
check_tags "cross repo, built-in" count-builtin "${tags3[@]}"
count "app-staging → new repository, 3 tags" "crane copy ×3 (library, kind Crane)" "$driver" crane retag "$host/app-staging" "$digest" "$host/count-crane" "${tags3[@]}"
check_tags "cross repo, crane copy" count-crane "${tags3[@]}"
echo 0 >"$work/n"
next=$work/n
timeit "app-staging → new repository each run, 3 tags" --prepare "echo \$((\$(cat $next) + 1)) > $next" \
  "built-in (library)" "$driver builtin retag $host/app-staging $digest $host/prom-b\$(cat $next) ${tags3[*]}" \
  "crane copy ×3" "$driver crane retag $host/app-staging $digest $host/prom-c\$(cat $next) ${tags3[*]}"
cross_json=$last_json

{
  cat <<MD
# crane vs the built-in client (\`bench/crane-vs-builtin.sh\`)

- Date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(machine)
- CPU busy just before the timings: ${busy_before}%; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg) (2 shared cores: the two tools ran side by side in one hyperfine call per scenario)
- Registry: $(docker-registry --version 2>&1 | head -1), filesystem storage, 127.0.0.1, plain HTTP, no auth
- Tools: cargo-gitops $("$gitops" --version | awk '{print $2}') (release), crane $(crane version), $(hyperfine --version); RUNS=$RUNS after 1 warm-up
- Image: \`crane append\` of one 256 KiB random-file layer on an empty base; $digest ($media_type, $blobs blobs)

## Requests per operation (one run each, from the access log)

$rows_header
$(printf '%s\n' "${rows[@]}")

## Wall time

$times_header
$(printf '%s\n' "${times[@]}")

Ratios of medians (crane / built-in): lookup $(ratio "$lookup_json" 0 1)×, CLI lookup + 2 tags $(ratio "$cli_json" 0 1)×, same repository 3 tags $(ratio "$same_json" 0 1)×, cross-repository 3 tags $(ratio "$cross_json" 0 1)×.

## Digest kept byte for byte (sha256 of the manifest each promoted tag serves = source digest)

| run | tags | same bytes |
| --- | --- | --- |
$(printf '%s\n' "${checks[@]}")
MD
} >"$OUT"
cat "$OUT"
