#!/usr/bin/env bash
# What a promotion costs the registry and the clock: cargo-gitops' built-in registry client
# against `skopeo copy --preserve-digests` (what `--retag-with skopeo` runs), on a real
# Debian docker-registry on a free 127.0.0.1 port. Counts every request the registry logged
# (by kind), the blob bytes it served and received, and the wall time (hyperfine median).
# Writes bench/registry-results.md; scratch files (registry storage and log, podman storage,
# hyperfine JSON) live in a temp dir removed on exit, unless KEEP=1.
#
# Not a test: the times depend on the machine; the request counts do not.
#
# Usage: bench/registry.sh   (needs cargo, cc, docker-registry, htpasswd, podman, skopeo,
#                             hyperfine, curl, jq, git, python3)
# Knobs: RUNS=15 (lookups: at least 50) TAGS=10000 IDLE_WAIT=600 KEEP=0
#        OUT=bench/registry-results.md
set -euo pipefail

RUNS=${RUNS:-15}
TAGS=${TAGS:-10000}
KEEP=${KEEP:-0}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$root/bench/registry-results.md}
target_dir=${CARGO_TARGET_DIR:-$root/target}

for tool in cargo cc docker-registry htpasswd podman skopeo hyperfine curl jq git python3 timeout; do
  command -v "$tool" >/dev/null || {
    echo "bench/registry.sh: $tool not found" >&2
    exit 1
  }
done

work=$(mktemp -d /tmp/bench-registry.XXXXXX)
registry_pids=()
cleanup() {
  local pid
  for pid in "${registry_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $KEEP == 1 ]]; then
    echo "kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

say() { echo "== $*" >&2; }

# --- Binaries -----------------------------------------------------------------------------
say "building cargo-gitops (release)"
cargo build --quiet --release -p cargo-gitops --manifest-path "$root/Cargo.toml"
gitops=$target_dir/release/cargo-gitops

# The CLI gives an environment at most two tags; the library call below retags to exactly
# three, and does a bare lookup, with the same code the CLI runs (Retagger, builtin kind).
say "building the library driver (release)"
mkdir -p "$work/driver/src"
cat >"$work/driver/Cargo.toml" <<EOF
[package]
name = "registry-bench-driver"
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
EOF
cp "$root/Cargo.lock" "$work/driver/Cargo.lock"
cat >"$work/driver/src/main.rs" <<'EOF'
//! `driver retag SOURCE DIGEST TARGET TAG...` or `driver lookup REPOSITORY TAG`, through
//! `cargo_gitops::build::retag::Retagger` with the built-in client; prints its request count.
use cargo_gitops::build::retag::Retagger;
use cargo_gitops::config::RetaggerKind;
use cargo_gitops::registry::options::ClientOptions;
use cargo_gitops::registry::reference::Repository;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let retagger = Retagger::new(RetaggerKind::Builtin, ClientOptions::default(), None);
    let repository = |text: &str| Repository::parse(text).expect("a repository");
    let result = match args.first().map(String::as_str) {
        Some("retag") => retagger.retag(
            &repository(&args[1]),
            &args[2],
            &repository(&args[3]),
            &args[4..],
        ),
        Some("lookup") => retagger
            .lookup(&repository(&args[1]), &args[2])
            .map(|digest| println!("{}", digest.unwrap_or_else(|| "none".to_owned()))),
        _ => panic!("usage: driver retag SOURCE DIGEST TARGET TAG... | lookup REPOSITORY TAG"),
    };
    if let Err(err) = result {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
    eprintln!("requests: {}", retagger.request_count());
}
EOF
cargo build --quiet --release --manifest-path "$work/driver/Cargo.toml" --target-dir "$target_dir"
driver=$target_dir/release/registry-bench-driver

# --- Registries -----------------------------------------------------------------------------
# Starts docker-registry NAME on a free port with its access log in $work/NAME.log, behind
# htpasswd when USER and PASSWORD are given; prints its host.
start_registry() { # name [user password]
  local name=$1 port auth=""
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if (($# == 3)); then
    htpasswd -Bbc "$work/$name.htpasswd" "$2" "$3" 2>/dev/null
    auth=$'auth:\n  htpasswd:\n    realm: bench\n    path: '"$work/$name.htpasswd"$'\n'
  fi
  cat >"$work/$name.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $work/$name-data
  delete:
    enabled: true
${auth}http:
  addr: 127.0.0.1:$port
EOF
  echo "== starting docker-registry $name on 127.0.0.1:$port" >&2
  docker-registry serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
  registry_pids+=($!)
  local _
  for _ in $(seq 100); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/") =~ ^(200|401)$ ]] && break
    sleep 0.1
  done
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/") =~ ^(200|401)$ ]] || {
    echo "docker-registry $name did not start; see $work/$name.log" >&2
    exit 1
  }
  registry_host=127.0.0.1:$port
}
start_registry open
host=$registry_host
log=$work/open.log
auth_user=bench auth_password=bench-password-0d5e
start_registry auth "$auth_user" "$auth_password"
auth_host=$registry_host
auth_log=$work/auth.log

# --- Image and fixture ----------------------------------------------------------------------
# A git repository whose Cargo.toml points at the registry, so the CLI runs as in CI.
fixture() { # dir image [registry host]
  mkdir -p "$1"
  printf '[workspace]\n\n[workspace.metadata.gitops]\nregistry = "%s"\nimage = "%s"\n' \
    "${3:-$host}" "$2" >"$1/Cargo.toml"
  git -C "$1" init -q -b main
  git -C "$1" add -A
  git -C "$1" -c user.name=bench -c user.email=bench@example.com -c commit.gpgsign=false \
    commit -q -m bench
}
fixture "$work/fixture" app
sha=$(git -C "$work/fixture" rev-parse HEAD)
lookup=commit-$sha
echo '{"auths":{}}' >"$work/auth.json"
export DOCKER_CONFIG=$work/no-docker-config REGISTRY_AUTH_FILE=$work/auth.json
unset GITHUB_ACTIONS GITHUB_REF GITHUB_SHA GITHUB_OUTPUT GITHUB_STEP_SUMMARY \
  GITOPS_REGISTRY_USER GITOPS_REGISTRY_PASSWORD

say "building and pushing a FROM scratch image (podman, vfs) as app:$lookup"
mkdir -p "$work/ctx"
printf '#include <unistd.h>\nint main(void){write(1,"hello\\n",6);return 0;}\n' >"$work/ctx/hello.c"
cc -static -Os -o "$work/ctx/hello" "$work/ctx/hello.c"
printf 'FROM scratch\nCOPY hello /hello\nUSER 65532\nENTRYPOINT ["/hello"]\n' >"$work/ctx/Dockerfile"
podman=(podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver vfs)
# Labelled with its commit, as the tool's own builds are: a build checks it before retagging.
timeout 300 "${podman[@]}" build -q --label "org.opencontainers.image.revision=$sha" \
  -t localhost/bench:latest "$work/ctx" >/dev/null
for repo in app app-staging big; do
  timeout 300 "${podman[@]}" push -q --tls-verify=false --format oci \
    localhost/bench:latest "$host/$repo:$lookup"
done
timeout 300 "${podman[@]}" push -q --tls-verify=false --format oci \
  --creds "$auth_user:$auth_password" localhost/bench:latest "$auth_host/app:$lookup"
accept='application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'
curl -sf -H "Accept: $accept" -D "$work/manifest.head" -o "$work/manifest.json" \
  "http://$host/v2/app/manifests/$lookup"
digest=$(tr -d '\r' <"$work/manifest.head" | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
media_type=$(jq -r .mediaType "$work/manifest.json")
jq -r '.config, .layers[] | "\(.digest) \(.size)"' "$work/manifest.json" >"$work/blob-sizes"
image_bytes=$(awk '{s+=$2} END {print s}' "$work/blob-sizes")
say "image $digest ($media_type), blobs $image_bytes bytes"

# --- Counting -------------------------------------------------------------------------------
log_lines() { grep -c '^127\.0\.0\.1 - ' "$log" || true; }

# Waits until the access log stops growing (it is written just after each answer).
settle() {
  local before after
  before=$(log_lines)
  while sleep 0.3; after=$(log_lines); [[ $after != "$before" ]]; do before=$after; done
}

# Markdown cells for the requests logged after line $1 of the access log: manifest
# GET/HEAD/PUT, blob GET/HEAD, mount POST, upload POST, upload PATCH+PUT, /v2/ ping, other,
# total, 401s, blob bytes served (GET) and of them layer bytes, blob bytes received
# (completed uploads) and of them layer bytes.
tally() { # skip
  grep '^127\.0\.0\.1 - ' "$log" | tail -n +"$(($1 + 1))" | awk -F'"' -v sizes="$work/blob-sizes" '
    BEGIN {
      while ((getline line < sizes) > 0) {
        split(line, p, " "); size[p[1]] = p[2]; if (config == "") config = p[1]
      }
    }
    {
      split($2, r, " "); split($3, s, " ")
      m = r[1]; u = r[2]; st = s[1]; b = s[2]
      if (st == 401) unauth++
      if (u == "/v2/" || u == "/v2") k = "ping"
      else if (u ~ /\/manifests\//) k = "manifest " m
      else if (u ~ /\/blobs\/uploads/) {
        if (m == "POST" && u ~ /mount=/) k = "mount"
        else if (m == "POST") k = "upload POST"
        else {
          k = "upload data"
          if (m == "PUT" && st == 201 && match(u, /digest=sha256%3A[0-9a-f]+/)) {
            d = "sha256:" substr(u, RSTART + 16, RLENGTH - 16); up += size[d]
            if (d != config) layers_up += size[d]
          }
        }
      }
      else if (u ~ /\/blobs\//) {
        k = "blob " m
        if (m == "GET" && st == 200) { down += b; if (index(u, config) == 0) layers_down += b }
      }
      else k = "other"
      n[k]++; total++
    }
    END {
      split("manifest GET|manifest HEAD|manifest PUT|blob GET|blob HEAD|mount|upload POST|upload data|ping|other", ks, "|")
      out = ""
      for (i = 1; i <= 10; i++) out = out (n[ks[i]] + 0) " | "
      printf "%s**%d** | %d | %d | %d | %d | %d |", out, total, unauth, down + 0, layers_down + 0, up + 0, layers_up + 0
    }'
}

rows=()
count() { # scenario tool command...
  local scenario=$1 tool=$2
  shift 2
  settle
  local before
  before=$(log_lines)
  "$@" >/dev/null 2>"$work/count.err" || {
    cat "$work/count.err" >&2
    exit 1
  }
  settle
  last_tally=$(tally "$before")
  rows+=("| $scenario | $tool | $last_tally")
}

times=()
# hyperfine over the given commands (name, command pairs); appends one table row each.
timeit() { # scenario [--prepare CMD] name command [name command...]
  local scenario=$1
  shift
  local prepare=()
  if [[ $1 == --prepare ]]; then
    prepare=(--prepare "$2")
    shift 2
  fi
  local args=() names=()
  while (($#)); do
    names+=("$1")
    args+=(--command-name "$1" "$2")
    shift 2
  done
  local json=$work/hyperfine-${#times[@]}.json
  last_json=$json
  hyperfine --style none --shell bash --runs "${TIMEIT_RUNS:-$RUNS}" --warmup 1 "${prepare[@]}" --export-json "$json" \
    "${args[@]}" >&2
  local i
  for i in "${!names[@]}"; do
    times+=("| $scenario | ${names[$i]} | $(jq -r --argjson i "$i" '.results[$i] |
      "\(.median * 1000 | . * 10 | round / 10) | \(.mean * 1000 | . * 10 | round / 10) ± \(.stddev * 1000 | . * 10 | round / 10) | \(.min * 1000 | . * 10 | round / 10) – \(.max * 1000 | . * 10 | round / 10) | \(.times | length)"' "$json") |")
  done
}

skopeo_copy() { # source-repository target-repository tag...
  local from=$1 to=$2
  shift 2
  local tag
  for tag in "$@"; do
    skopeo copy -q --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
      "docker://$host/$from@$digest" "docker://$host/$to:$tag"
  done
}
export -f skopeo_copy
export host digest

tags3=(prd-1.0.0 prd-1.0 prd-latest)
cli() { # fixture-dir retagger
  (cd "$1" && "$gitops" build --retag-with "$2" --ref refs/tags/v1.0.0 --sha "$sha" -q)
}

# --- Quiet machine ---------------------------------------------------------------------------
# Other work on the machine skews every time. Wait (up to IDLE_WAIT seconds) for the CPUs to be
# at least 90% idle over 3 s, and report how busy they were when the timings began.
busy_pct() { # percentage of all CPUs busy over the next 3 s, from /proc/stat
  local a b total=0 idle i
  read -ra a < <(grep '^cpu ' /proc/stat)
  sleep 3
  read -ra b < <(grep '^cpu ' /proc/stat)
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  idle=$((b[4] - a[4] + b[5] - a[5]))
  echo $(((total - idle) * 100 / (total > 0 ? total : 1)))
}
IDLE_WAIT=${IDLE_WAIT:-600}
waited=0
while busy_before=$(busy_pct) && ((busy_before > 10 && waited < IDLE_WAIT)); do
  say "machine ${busy_before}% busy; waiting for it to quiet down"
  sleep 7
  waited=$((waited + 10))
done

# --- 1. Same repository, 3 tags ---------------------------------------------------------------
say "same-repository promotion to 3 tags"
count "same repository, 3 tags" "built-in (library)" "$driver" retag "$host/app" "$digest" "$host/app" "${tags3[@]}"
same_builtin=$last_tally
count "same repository, 3 tags" "skopeo copy ×3" skopeo_copy app app "${tags3[@]}"
same_skopeo=$last_tally
timeit "same repository, 3 tags (tags reused every run)" \
  "built-in (library)" "$driver retag $host/app $digest $host/app ${tags3[*]}" \
  "skopeo copy ×3" "skopeo_copy app app ${tags3[*]}"
same_json=$last_json

# --- 2. The CLI, as CI runs it: lookup then retag to prd-1.0.0 and prd-latest ----------------
say "CLI promotion of refs/tags/v1.0.0"
count "CLI: lookup + 2 tags" "cargo-gitops --retag-with builtin" cli "$work/fixture" builtin
cli_builtin=$last_tally
count "CLI: lookup + 2 tags" "cargo-gitops --retag-with skopeo" cli "$work/fixture" skopeo
timeit "CLI: lookup + 2 tags (tags reused every run)" \
  "cargo-gitops --retag-with builtin" "cd $work/fixture && $gitops build --retag-with builtin --ref refs/tags/v1.0.0 --sha $sha -q" \
  "cargo-gitops --retag-with skopeo" "cd $work/fixture && $gitops build --retag-with skopeo --ref refs/tags/v1.0.0 --sha $sha -q"
cli_json=$last_json

# --- 3. Across repositories: app-staging -> a new repository each run, 3 tags ----------------
say "cross-repository promotion to 3 tags"
echo 0 >"$work/n"
next=$work/n
count "app-staging → new repository, 3 tags" "built-in (library)" \
  "$driver" retag "$host/app-staging" "$digest" "$host/count-builtin" "${tags3[@]}"
cross_builtin=$last_tally
count "app-staging → new repository, 3 tags" "skopeo copy ×3" \
  skopeo_copy app-staging count-skopeo "${tags3[@]}"
timeit "app-staging → new repository each run, 3 tags" --prepare "echo \$((\$(cat $next) + 1)) > $next" \
  "built-in (library)" "$driver retag $host/app-staging $digest $host/prom-b\$(cat $next) ${tags3[*]}" \
  "skopeo copy ×3" "skopeo_copy app-staging prom-s\$(cat $next) ${tags3[*]}"
cross_json=$last_json

# --- 3b. With basic authentication (htpasswd), credentials in an auth.json -------------------
# Both the built-in client and skopeo read REGISTRY_AUTH_FILE.
say "CLI promotion against a registry that requires basic auth"
auth_b64=$(printf '%s:%s' "$auth_user" "$auth_password" | base64 -w0)
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$auth_host" "$auth_b64" >"$work/auth-logged-in.json"
fixture "$work/fixture-auth" app "$auth_host"
log=$auth_log
export REGISTRY_AUTH_FILE=$work/auth-logged-in.json
count "CLI: lookup + 2 tags, basic auth" "cargo-gitops --retag-with builtin" cli "$work/fixture-auth" builtin
cli_auth=$last_tally
count "CLI: lookup + 2 tags, basic auth" "cargo-gitops --retag-with skopeo" cli "$work/fixture-auth" skopeo
timeit "CLI: lookup + 2 tags, basic auth (tags reused every run)" \
  "cargo-gitops --retag-with builtin" "cd $work/fixture-auth && $gitops build --retag-with builtin --ref refs/tags/v1.0.0 --sha $sha -q" \
  "cargo-gitops --retag-with skopeo" "cd $work/fixture-auth && $gitops build --retag-with skopeo --ref refs/tags/v1.0.0 --sha $sha -q"
export REGISTRY_AUTH_FILE=$work/auth.json
log=$work/open.log

# --- 4. Lookup with many tags ---------------------------------------------------------------
say "putting $TAGS more tags in big (same manifest bytes, curl, 16 in parallel)"
for i in $(seq 0 $((TAGS - 1))); do
  printf 'url = "http://%s/v2/big/manifests/t%05d"\noutput = "/dev/null"\n' "$host" "$i"
done >"$work/put-tags.curl"
timeout 900 curl -sS -K "$work/put-tags.curl" -X PUT -H "Content-Type: $media_type" \
  --data-binary @"$work/manifest.json" -Z --parallel-max 16 -w '%{http_code}\n' \
  >"$work/put-tags.codes"
created=$(grep -c '^201$' "$work/put-tags.codes" || true)
big_tags=$(curl -sf "http://$host/v2/big/tags/list" | jq '.tags | length')
say "$created tags created; big has $big_tags tags"
[[ $created == "$TAGS" ]] || {
  echo "only $created of $TAGS tags were created" >&2
  exit 1
}
fixture "$work/fixture-big" big
count "lookup only, $big_tags tags" "built-in (library)" "$driver" lookup "$host/big" "$lookup"
lookup_builtin=$last_tally
count "lookup only, $big_tags tags" "skopeo inspect --raw" \
  skopeo inspect --raw --tls-verify=false "docker://$host/big:$lookup"
count "CLI: lookup + 2 tags, $big_tags tags" "cargo-gitops --retag-with builtin" cli "$work/fixture-big" builtin
count "listing the tags instead (not done)" "curl GET tags/list" curl -sf "http://$host/v2/big/tags/list"
TIMEIT_RUNS=$((RUNS < 50 ? 50 : RUNS)) timeit "lookup of $lookup" \
  "built-in, $big_tags tags" "$driver lookup $host/big $lookup" \
  "built-in, $(curl -sf "http://$host/v2/app/tags/list" | jq '.tags | length') tags" "$driver lookup $host/app $lookup" \
  "skopeo inspect --raw, $big_tags tags" "skopeo inspect --raw --tls-verify=false docker://$host/big:$lookup" \
  "curl -sfI (one HEAD, as a process), $big_tags tags" "curl -sfI -H 'Accept: $media_type' http://$host/v2/big/manifests/$lookup" \
  "curl GET tags/list, $big_tags tags" "curl -sf http://$host/v2/big/tags/list"

# --- Targets --------------------------------------------------------------------------------
# Field N (1-based) of a tally: 1 m GET, 2 m HEAD, 3 m PUT, 4 b GET, 5 b HEAD, 6 mount,
# 7 up POST, 8 up data, 9 ping, 10 other, 11 total, 12 401, 13 bytes down, 14 layer bytes
# down, 15 bytes up, 16 layer bytes up.
field() { echo "$1" | awk -F'|' -v i="$2" '{gsub(/[* ]/, "", $i); print $i}'; }
verdict() { if "$@"; then echo "**met**"; else echo "**not met**"; fi; }
is_exactly() { # tally "m GET" "m HEAD" "m PUT" mounts total
  [[ $(field "$1" 1) == "$2" && $(field "$1" 2) == "$3" && $(field "$1" 3) == "$4" &&
    $(field "$1" 6) == "$5" && $(field "$1" 11) == "$6" && $(field "$1" 13) == 0 &&
    $(field "$1" 15) == 0 ]]
}
median_ms() { jq -r --argjson i "$2" '.results[$i].median * 1000 | . * 10 | round / 10' "$1"; }
faster() { jq -e '.results[0].median < .results[1].median' "$1" >/dev/null; }
blobs=$(wc -l <"$work/blob-sizes")
targets=(
  "| same-repository promotion to 3 tags = 1 manifest GET + 3 manifest PUT, nothing else | $(verdict is_exactly "$same_builtin" 1 0 3 0 4) | $(field "$same_builtin" 11) requests: $(field "$same_builtin" 1) GET, $(field "$same_builtin" 3) PUT (skopeo copy ×3: $(field "$same_skopeo" 11) requests) |"
  "| CLI promotion = 1 HEAD (lookup) + 1 GET + 1 PUT per tag (2 tags) | $(verdict is_exactly "$cli_builtin" 1 1 2 0 4) | $(field "$cli_builtin" 11) requests |"
  "| lookup with $big_tags tags = 1 HEAD | $(verdict is_exactly "$lookup_builtin" 0 1 0 0 1) | $(field "$lookup_builtin" 11) request |"
  "| cross-repository: blobs mounted, 0 layer bytes moved | $(verdict is_exactly "$cross_builtin" 1 0 4 "$blobs" $((1 + 2 * blobs + 4))) | $(field "$cross_builtin" 6) mounts, $(field "$cross_builtin" 5) blob HEADs, $(field "$cross_builtin" 13) bytes down, $(field "$cross_builtin" 15) up |"
  "| no blob bytes at all transferred (same repository) | $(verdict test "$(field "$same_builtin" 13)$(field "$same_builtin" 15)" == 00) | built-in: $(field "$same_builtin" 13) down, $(field "$same_builtin" 15) up; skopeo copy ×3: $(field "$same_skopeo" 13) down ($(field "$same_skopeo" 14) of layers), $(field "$same_skopeo" 15) up |"
  "| faster than skopeo copy (same repository, 3 tags) | $(verdict faster "$same_json") | median $(median_ms "$same_json" 0) ms vs $(median_ms "$same_json" 1) ms |"
  "| faster than skopeo (CLI promotion) | $(verdict faster "$cli_json") | median $(median_ms "$cli_json" 0) ms vs $(median_ms "$cli_json" 1) ms |"
  "| faster than skopeo copy (cross-repository) | $(verdict faster "$cross_json") | median $(median_ms "$cross_json" 0) ms vs $(median_ms "$cross_json" 1) ms |"
  "| + 1 auth handshake when auth is required (basic auth) | $(verdict is_exactly "$cli_auth" 1 2 2 0 5) | $(field "$cli_auth" 11) requests, $(field "$cli_auth" 12) of them 401 |"
)

# --- Report ---------------------------------------------------------------------------------
say "writing $OUT"
{
  cat <<EOF
# Registry benchmark: built-in client vs skopeo

Written by \`bench/registry.sh\` (run: \`bash bench/registry.sh\`, RUNS=$RUNS, TAGS=$TAGS).
Not a test: times depend on the machine; request counts do not.

- Date: $(date -u +%Y-%m-%dT%H:%MZ)
- Machine: $(nproc) CPUs, $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), Linux $(uname -r), $(awk '/MemTotal/{printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)
- CPU busy just before the timings: ${busy_before}% (waited up to ${IDLE_WAIT}s for under 10%); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)
- Registry: $(docker-registry --version 2>&1 | head -1), filesystem storage, on 127.0.0.1 (plain HTTP); no auth, except the "basic auth" rows (htpasswd, bcrypt)
- Tools: cargo-gitops $("$gitops" --version | awk '{print $2}') (release build), $(skopeo --version), $(hyperfine --version)
- Image: \`FROM scratch\` + a static binary, built with podman (vfs), pushed as OCI; manifest $digest, $(wc -l <"$work/blob-sizes") blobs, $image_bytes bytes
- "built-in (library)": a driver the script compiles that calls \`Retagger::retag\`/\`lookup\` (kind \`Builtin\`, default \`ClientOptions\`), since the CLI gives an environment at most two tags; "cargo-gitops" rows run the release CLI in a fixture git repository (\`build --ref refs/tags/v1.0.0 --sha SHA -q\`)

## Targets

| target | verdict | measured |
| --- | --- | --- |
EOF
  printf '%s\n' "${targets[@]}"
  cat <<EOF

## Requests per promotion

One run each, counted from the registry's access log. Columns: manifest GET / HEAD / PUT,
blob GET / HEAD, cross-repository mount POST (\`?mount=…&from=…\`), upload-session POST,
upload data PATCH+PUT, \`/v2/\` ping, other (here: tags/list). Bytes down: blob bytes the
registry served (\`GET /v2/*/blobs/…\`), then those of layers only (the rest is the image
config). Bytes up: sizes of the blobs whose upload completed, then layers only.

| scenario | tool | m GET | m HEAD | m PUT | b GET | b HEAD | mount | up POST | up data | /v2/ | other | total | 401 | bytes down | layer bytes down | bytes up | layer bytes up |
| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |
EOF
  printf '%s\n' "${rows[@]}"
  cat <<EOF

## Wall time

hyperfine, $RUNS runs (lookups: at least 50) after 1 warm-up, each command through \`bash -c\`
(hyperfine subtracts the shell's start-up; \`skopeo copy ×3\` is a bash function looping over
the tags). Same-repository and CLI rows PUT the same tags every run (a re-PUT of a tag is the
same work for the registry). Cross-repository rows promote into a new repository each run
(\`--prepare\` bumps a counter), so every run mounts or copies the blobs afresh.

| scenario | command | median ms | mean ± σ ms | min – max ms | runs |
| --- | --- | --: | --: | --: | --: |
EOF
  printf '%s\n' "${times[@]}"
} >"$OUT"
say "done"
cat "$OUT"
