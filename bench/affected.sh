#!/usr/bin/env bash
# `cargo gitops affected` on a large monorepo (issue 27): a Cargo workspace of 50 crates (10
# services, each linking 4 of 40 libraries by path) with a lock file of 300 registry crates and
# 10,000 commits (made with `git fast-import`, each changing one file of one crate), side by side
# in one run with what a hand-written CI script does for the same answer: `git diff --name-only`
# of the two commits plus `cargo metadata --no-deps` (which the tool runs too), without any
# dependency or lock file analysis.
# Cases, interleaved run by run:
#   near     - compared with the previous commit (a run after a run)
#   far      - compared with the first commit, 10,000 commits back (a long-skipped environment)
#   baseline - the hand-written script for `far`
# Usage: bench/affected.sh
# Knobs (defaults): RUNS=15 COMMITS=10000 GITOPS_BIN= (a built cargo-gitops; default: cargo build
#   --release, without LTO to keep the build short, into $CARGO_TARGET_DIR)
#   OUT=bench/affected-results.md KEEP=0
# Needs cargo, git, python3.
set -euo pipefail
RUNS=${RUNS:-15}
COMMITS=${COMMITS:-10000}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$root/bench/affected-results.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
for tool in cargo git python3; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found" >&2; exit 1; }
done

if [ -z "${GITOPS_BIN:-}" ]; then
  echo "building cargo-gitops (release, no LTO)..." >&2
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo build --quiet --release --locked -p cargo-gitops --manifest-path "$root/Cargo.toml"
  GITOPS_BIN=$CARGO_TARGET_DIR/release/cargo-gitops
fi

work=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
repo=$work/monorepo
mkdir -p "$repo"
cd "$repo"
git init --quiet -b main .

# The workspace and its history as one fast-import stream: commit 1 adds every file, each later
# commit changes one source file.
python3 - "$COMMITS" <<'PY' | git fast-import --quiet
import random, sys
commits = int(sys.argv[1])
random.seed(27)
files = {}
libs = [f"lib{n:02}" for n in range(40)]
services = [f"svc{n:02}" for n in range(10)]
members = [f"services/{s}" for s in services] + [f"libs/{l}" for l in libs]
files["Cargo.toml"] = (
    "[workspace]\nresolver = \"2\"\nmembers = [" + ", ".join(f'"{m}"' for m in members) + "]\n\n"
    "[workspace.metadata.gitops]\nregistry = \"127.0.0.1:9/acme\"\n")
crates = [(f"dep{n:03}", f"1.{n % 7}.{n % 13}") for n in range(300)]
for lib in libs:
    deps = random.sample(crates, 6)
    files[f"libs/{lib}/Cargo.toml"] = (
        f"[package]\nname = \"{lib}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\n"
        + "".join(f"{name} = \"{version}\"\n" for name, version in deps))
    files[f"libs/{lib}/src/lib.rs"] = f"pub fn {lib}() {{}}\n"
linked = {}
for i, svc in enumerate(services):
    own = libs[i * 4:(i + 1) * 4]
    linked[svc] = own
    files[f"services/{svc}/Cargo.toml"] = (
        f"[package]\nname = \"{svc}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\n"
        + "".join(f"{l} = {{ path = \"../../libs/{l}\" }}\n" for l in own)
        + f"\n[package.metadata.gitops]\nimage = \"{svc}\"\nbuilder = \"native\"\n")
    files[f"services/{svc}/src/main.rs"] = "fn main() {}\n"
lock = ["version = 4\n"]
for lib in libs:
    deps = [l.split(" = ")[0] for l in files[f"libs/{lib}/Cargo.toml"].split("[dependencies]\n")[1].splitlines()]
    lock.append(f"[[package]]\nname = \"{lib}\"\nversion = \"0.1.0\"\ndependencies = [\n" + "".join(f" \"{d}\",\n" for d in deps) + "]\n")
for svc in services:
    lock.append(f"[[package]]\nname = \"{svc}\"\nversion = \"0.1.0\"\ndependencies = [\n" + "".join(f" \"{l}\",\n" for l in linked[svc]) + "]\n")
for name, version in crates:
    lock.append(f"[[package]]\nname = \"{name}\"\nversion = \"{version}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{name:0>64}\"\n")
files["Cargo.lock"] = "\n".join(lock)
out = sys.stdout
def blob(text):
    data = text.encode()
    out.write(f"data {len(data)}\n"); out.flush()
    sys.stdout.buffer.write(data); out.write("\n")
when = 1_700_000_000
for n in range(commits):
    out.write(f"commit refs/heads/main\ncommitter Bench <bench@example.invalid> {when + n} +0000\n")
    blob(f"commit {n}")
    if n == 0:
        for path, text in files.items():
            out.write(f"M 100644 inline {path}\n"); blob(text)
    else:
        member = random.choice(members)
        path = f"{member}/src/{'main' if member.startswith('services') else 'lib'}.rs"
        out.write(f"M 100644 inline {path}\n"); blob(f"// change {n}\n" + files[path])
    out.write("\n")
PY
git checkout --quiet main
first=$(git rev-list --max-parents=0 HEAD)
previous=$(git rev-parse HEAD~1)
echo "repository: $(git rev-list --count HEAD) commits, $(git ls-files | wc -l) files" >&2

# Milliseconds of wall time for one run of "$@", output discarded.
ms() {
  python3 - "$@" <<'PY'
import subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(f"{(time.perf_counter() - start) * 1000:.1f}")
PY
}
baseline() {
  git diff --name-only "$first" HEAD >/dev/null
  cargo metadata --format-version 1 --no-deps --offline >/dev/null
}
export -f baseline
export first

near=() far=() base=()
for _ in $(seq "$RUNS"); do
  near+=("$(ms "$GITOPS_BIN" gitops affected --format json --since "$previous")")
  far+=("$(ms "$GITOPS_BIN" gitops affected --format json --since "$first")")
  base+=("$(ms bash -c baseline)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m_near=$(median "${near[@]}")
m_far=$(median "${far[@]}")
m_base=$(median "${base[@]}")
answer=$("$GITOPS_BIN" gitops affected --since "$first" --format json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(len(r["services"]), "to build,", len(r["unchanged"]), "unchanged")')

{
  echo "# bench/affected.sh results"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git --version), $("$GITOPS_BIN" --version)"
  echo "Workspace: 50 crates (10 services), a 300-crate lock file, $COMMITS commits; RUNS=$RUNS, interleaved."
  echo
  echo "| case | median ms | runs (ms) |"
  echo "|---|---|---|"
  echo "| affected, since the previous commit | $m_near | ${near[*]} |"
  echo "| affected, since the first commit | $m_far | ${far[*]} |"
  echo "| git diff --name-only + cargo metadata --no-deps (hand-written baseline) | $m_base | ${base[*]} |"
  echo
  echo "far: $answer; ratio affected(far) / baseline = $(python3 -c "print(f'{$m_far / $m_base:.2f}')")"
} | tee "$OUT"
