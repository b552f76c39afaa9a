# Shared by bench/crane-vs-builtin.sh and bench/ko-vs-native.sh (sourced, not run).
# A Debian docker-registry on a free 127.0.0.1 port with its access log (as bench/registry.sh
# starts one), request counting from that log, hyperfine medians. Needs $work set.
registry_pids=()
sbs_cleanup() {
  local pid
  for pid in "${registry_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
say() { echo "== $*" >&2; }

start_registry() { # name -> sets registry_host, log
  local name=$1 port _
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >"$work/$name.yml" <<YML
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
http:
  addr: 127.0.0.1:$port
YML
  say "starting docker-registry $name on 127.0.0.1:$port"
  docker-registry serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
  registry_pids+=($!)
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" && break
    sleep 0.1
  done
  curl -sf -o /dev/null "http://127.0.0.1:$port/v2/" || { echo "registry did not start" >&2; exit 1; }
  registry_host=127.0.0.1:$port
  log=$work/$name.log
}

log_lines() { grep -c '^127\.0\.0\.1 - ' "$log" || true; }
settle() { # until the access log stops growing (bounded: 30 polls)
  local before after i
  before=$(log_lines)
  for i in $(seq 30); do
    sleep 0.3
    after=$(log_lines)
    [[ $after == "$before" ]] && return 0
    before=$after
  done
}

# Markdown cells for the requests logged after line $1: manifest GET/HEAD/PUT, blob GET/HEAD,
# mount POST, upload POST, upload PATCH+PUT, /v2/ ping, other, total, blob bytes served (GET).
tally() { # skip
  grep '^127\.0\.0\.1 - ' "$log" | tail -n +"$(($1 + 1))" | awk -F'"' '
    {
      split($2, r, " "); split($3, s, " ")
      m = r[1]; u = r[2]; st = s[1]; b = s[2]
      if (u == "/v2/" || u == "/v2") k = "ping"
      else if (u ~ /\/manifests\//) k = "manifest " m
      else if (u ~ /\/blobs\/uploads/) {
        if (m == "POST" && u ~ /mount=/) k = "mount"
        else if (m == "POST") k = "upload POST"
        else k = "upload data"
      }
      else if (u ~ /\/blobs\//) { k = "blob " m; if (m == "GET" && st == 200) down += b }
      else k = "other"
      n[k]++; total++
    }
    END {
      split("manifest GET|manifest HEAD|manifest PUT|blob GET|blob HEAD|mount|upload POST|upload data|ping|other", ks, "|")
      out = ""
      for (i = 1; i <= 10; i++) out = out (n[ks[i]] + 0) " | "
      printf "%s**%d** | %d |", out, total, down + 0
    }'
}
rows=()
count() { # scenario tool command...
  local scenario=$1 tool=$2 before
  shift 2
  settle
  before=$(log_lines)
  "$@" >/dev/null 2>"$work/count.err" || { cat "$work/count.err" >&2; exit 1; }
  settle
  last_tally=$(tally "$before")
  rows+=("| $scenario | $tool | $last_tally")
}
rows_header='| scenario | tool | m GET | m HEAD | m PUT | b GET | b HEAD | mount | up POST | up data | /v2/ | other | total | blob bytes down |
| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |'

times=()
timeit() { # scenario [--prepare CMD] name command [name command...]
  local scenario=$1 prepare=() args=() names=() json i
  shift
  if [[ $1 == --prepare ]]; then prepare=(--prepare "$2"); shift 2; fi
  while (($#)); do names+=("$1"); args+=(--command-name "$1" "$2"); shift 2; done
  json=$work/hyperfine-${#times[@]}.json
  last_json=$json
  timeout 900 hyperfine --style none --shell bash --runs "${RUNS:-15}" --warmup 1 "${prepare[@]}" \
    --export-json "$json" "${args[@]}" >&2
  for i in "${!names[@]}"; do
    times+=("| $scenario | ${names[$i]} | $(jq -r --argjson i "$i" '.results[$i] |
      "\(.median * 1000 | . * 10 | round / 10) | \(.mean * 1000 | . * 10 | round / 10) ± \(.stddev * 1000 | . * 10 | round / 10) | \(.min * 1000 | . * 10 | round / 10) – \(.max * 1000 | . * 10 | round / 10) | \(.times | length)"' "$json") |")
  done
}
times_header='| scenario | command | median ms | mean ± σ ms | min – max ms | runs |
| --- | --- | --: | --: | --: | --: |'
ratio() { jq -r --argjson a "$2" --argjson b "$3" '(.results[$b].median / .results[$a].median * 100 | round / 100)' "$1"; }

busy_pct() { # percentage of all CPUs busy over 3 s
  local a b total=0 idle i
  read -ra a < <(grep '^cpu ' /proc/stat)
  sleep 3
  read -ra b < <(grep '^cpu ' /proc/stat)
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  idle=$((b[4] - a[4] + b[5] - a[5]))
  echo $(((total - idle) * 100 / (total > 0 ? total : 1)))
}
machine() {
  echo "$(nproc) CPUs, $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo), Linux $(uname -r), $(awk '/MemTotal/{printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
}
accept='application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'
manifest_sha() { # repo ref -> sha256 of the manifest bytes as served
  curl -sf -H "Accept: $accept" "http://$registry_host/v2/$1/manifests/$2" | sha256sum | awk '{print "sha256:" $1}'
}
