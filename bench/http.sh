#!/usr/bin/env bash
# Compares demo-app (Rust) with the seed's Express server on this machine: throughput and
# p99 latency under wrk, peak RSS, and time from exec to the first answered request.
# Prints a Markdown table; raw wrk output lands in bench/out/ (gitignored).
#
# Not a test: numbers depend on the machine. Both servers and wrk share it, so run it on
# an otherwise idle box. Only 127.0.0.1 is loaded, and every step is time-bounded.
#
# Usage: bench/http.sh   (from anywhere; needs cargo, node, npm, wrk, python3, curl)
# Knobs: RUNS=3 DURATION=10s THREADS=2 LATENCY_THREADS=1 CONNECTIONS=64 STARTS=20 WARMUP=3s
#        IDLE_WAIT=600 MAX_FOREIGN=10 TRIES=6
set -euo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
# A second pass on /api with fewer wrk threads: on a small machine, wrk's threads plus the
# server's outnumber the CPUs, and the time a wrk thread waits for a CPU is counted as
# response latency. With one wrk thread the p99 shows the server more than the scheduler.
LATENCY_THREADS=${LATENCY_THREADS:-1}
CONNECTIONS=${CONNECTIONS:-64}
STARTS=${STARTS:-20}
WARMUP=${WARMUP:-3s}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=$root/bench
out=$bench/out
mkdir -p "$out"
rm -f "$out"/wrk-*

for tool in cargo node npm wrk python3 curl timeout; do
  command -v "$tool" >/dev/null || {
    echo "bench/http.sh: $tool not found (wrk: apt-get install -y wrk)" >&2
    exit 1
  }
done

# Built the way demo-app/Dockerfile builds it (static, +crt-static, explicit --target),
# so the figures are those of the binary the image ships.
echo "building demo-app (release, static like the image)..." >&2
triple="$(uname -m)-unknown-linux-gnu"
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --quiet --release --locked -p demo-app --target "$triple" \
  --manifest-path "$root/Cargo.toml"
rust_bin=${CARGO_TARGET_DIR:-$root/target}/$triple/release/demo-app

echo "installing express into bench/node_modules..." >&2
npm install --prefix "$bench" --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null
express_js=$bench/express/server.js
express_version=$(node -p "require('$bench/node_modules/express/package.json').version")

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs one app in the current (sub)shell via exec, so the caller's $! is the server itself,
# not a wrapper shell: its VmHWM is what gets read.
launch() { # app
  case $1 in
    rust) exec "$rust_bin" ;;
    express) exec node "$express_js" ;;
  esac
}
declare -A pid port

# Other work on the machine skews every figure. Wait (up to IDLE_WAIT seconds) for the
# CPUs to be at least 90% idle over 3 s, and report how busy they were when the run began.
busy_pct() { # percentage of all CPUs busy over the next 3 s, from /proc/stat
  local a b
  read -ra a < <(grep '^cpu ' /proc/stat)
  sleep 3
  read -ra b < <(grep '^cpu ' /proc/stat)
  local total=0 idle i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  idle=$((b[4] - a[4] + b[5] - a[5]))
  echo $(((total - idle) * 100 / (total > 0 ? total : 1)))
}
IDLE_WAIT=${IDLE_WAIT:-600}
waited=0
while busy=$(busy_pct) && ((busy > 10 && waited < IDLE_WAIT)); do
  echo "machine ${busy}% busy; waiting for it to quiet down..." >&2
  sleep 7
  waited=$((waited + 10))
done
busy_before=$busy

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_ready() { # port
  for _ in $(seq 1 1000); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$1/api" 2>/dev/null && return 0
    sleep 0.01
  done
  echo "bench/http.sh: server on port $1 did not answer within 10 s" >&2
  exit 1
}

for app in rust express; do
  port[$app]=$(free_port)
  # NODE_ENV=production is what a container would set; it turns off Express's
  # development-only work so the baseline is not handicapped. demo-app ignores it.
  (HOST=127.0.0.1 PORT=${port[$app]} NODE_ENV=production launch "$app") 2>"$out/$app.log" &
  pid[$app]=$!
  pids+=("${pid[$app]}")
  wait_ready "${port[$app]}"
done

wrk_run() { # duration app path
  timeout 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1" --latency \
    "http://127.0.0.1:${port[$2]}$3"
}

echo "warming up both servers ($WARMUP per endpoint)..." >&2
for app in rust express; do
  for path in /api /; do wrk_run "$WARMUP" "$app" "$path" >/dev/null; done
done

# One measured wrk run. On a shared machine another process can take CPU in the middle
# of a run, and that shows up as lost throughput and a long tail, so the run is repeated
# (up to TRIES times) until the CPU time used by anything but this server and wrk stays
# under MAX_FOREIGN% of the machine; if no attempt manages it, the quietest one is kept
# and the summary says so. The share comes from /proc/stat (all CPUs), /proc/PID/stat
# (the server) and getrusage of wrk, a child of the helper.
MAX_FOREIGN=${MAX_FOREIGN:-10}
TRIES=${TRIES:-6}
measure() { # app path wrk-threads outfile
  python3 - "${pid[$1]}" "http://127.0.0.1:${port[$1]}$2" "$4" "$MAX_FOREIGN" "$TRIES" \
    timeout 120 wrk -t"$3" -c"$CONNECTIONS" -d"$DURATION" --latency <<'PY'
import os, resource, subprocess, sys

pid, url, outfile, max_foreign, tries = sys.argv[1:6]
wrk = sys.argv[6:] + [url]

def machine():  # (all jiffies, idle jiffies) across CPUs
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return sum(fields), fields[3] + fields[4]

def server():  # utime + stime of the server, in jiffies
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])

def children():  # CPU seconds of reaped children (wrk)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime

hz = os.sysconf("SC_CLK_TCK")
best = None
for attempt in range(1, int(tries) + 1):
    (total0, idle0), server0, wrk0 = machine(), server(), children()
    text = subprocess.run(wrk, capture_output=True, text=True, check=True).stdout
    (total1, idle1), server1, wrk1 = machine(), server(), children()
    busy = (total1 - total0) - (idle1 - idle0)
    ours = (server1 - server0) + (wrk1 - wrk0) * hz
    foreign = max(0.0, (busy - ours) * 100 / (total1 - total0))
    if best is None or foreign < best[0]:
        best = (foreign, text)
    if foreign < float(max_foreign):
        break
    again = "measuring again" if attempt < int(tries) else "keeping the quietest attempt"
    print(f"  {foreign:.0f}% of the CPUs went to other processes; {again}", file=sys.stderr)
with open(outfile, "w") as f:
    f.write(best[1])
with open(outfile + ".foreign", "w") as f:
    f.write(f"{best[0]:.1f} {attempt}\n")
PY
}

# Alternate which app goes first in each run so neither always gets the cooler machine.
passes=("/api $THREADS api" "/ $THREADS root")
((LATENCY_THREADS > 0)) && passes+=("/api $LATENCY_THREADS api-t$LATENCY_THREADS")
for run in $(seq 1 "$RUNS"); do
  if ((run % 2)); then order=(rust express); else order=(express rust); fi
  for pass in "${passes[@]}"; do
    read -r path threads label <<<"$pass"
    for app in "${order[@]}"; do
      echo "run $run/$RUNS: $app $path, wrk -t$threads ($DURATION)..." >&2
      measure "$app" "$path" "$threads" "$out/wrk-$app-$label-$run.txt"
    done
  done
done

for app in rust express; do
  awk '/^VmHWM/ {print $2}' "/proc/${pid[$app]}/status" >"$out/$app.hwm-kb"
done
cleanup
pids=()

# Time from exec to the first 200 on /api, median of $STARTS cold starts per app. A Python
# loop takes a monotonic timestamp, spawns the server (fork+exec included in the figure),
# then retries connect + GET every 0.2 ms until a 200 status line arrives, and stops the server.
echo "measuring start-up ($STARTS starts per app)..." >&2
startup() { # app
  local argv
  if [[ $1 == rust ]]; then argv=("$rust_bin"); else argv=(node "$express_js"); fi
  python3 - "$STARTS" "$(free_port)" "${argv[@]}" <<'PY'
import os, signal, socket, statistics, subprocess, sys, time

starts, port, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), NODE_ENV="production")
request = b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"

def answered():
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(request)
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False

samples = []
for _ in range(starts):
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not answered():
        if time.perf_counter() - t0 > 10:
            proc.kill()
            sys.exit(f"no answer within 10 s from {argv}")
        time.sleep(0.0002)
    samples.append((time.perf_counter() - t0) * 1000)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
print(f"{statistics.median(samples):.2f}")
PY
}
for app in rust express; do startup "$app" >"$out/$app.startup-ms"; done

python3 - "$out" "$RUNS" "$express_version" "$THREADS" "$LATENCY_THREADS" <<'PY'
import re, statistics, sys
from pathlib import Path

out, runs, express_version = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
threads, latency_threads = int(sys.argv[4]), int(sys.argv[5])
UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}

def wrk(app, path, run):
    text = (out / f"wrk-{app}-{path}-{run}.txt").read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", text)
    if errors:
        sys.exit(f"wrk reported errors for {app} {path} run {run}: {errors.group(0)}")
    return rps, float(value) * UNIT[unit]

def median(app, path, index):
    return statistics.median(wrk(app, path, r)[index] for r in range(1, runs + 1))

def number(x, digits=0):
    return f"{x:,.{digits}f}"

def throughput(key, label, target):
    r, e = median("rust", key, 0), median("express", key, 0)
    met = ("yes" if r >= 10 * e else "**no**") if target else "–"
    rows.append((f"requests/s, {label}", number(r), number(e), f"{r / e:.1f}×", target or "–", met))

def latency(key, label, target):
    r, e = median("rust", key, 1), median("express", key, 1)
    met = ("yes" if r * 5 <= e else "**no**") if target else "–"
    rows.append((f"p99 latency, {label}", f"{r:.2f} ms", f"{e:.2f} ms", f"1/{e / r:.1f}",
                 target or "–", met))

rows = []
throughput("api", f"`GET /api`, wrk -t{threads}", "≥ 10×")
throughput("root", f"`GET /`, wrk -t{threads}", None)
latency("api", f"`GET /api`, wrk -t{threads}", "≤ 1/5")
latency("root", f"`GET /`, wrk -t{threads}", None)
keys = [("api", "/api"), ("root", "/")]
if latency_threads:
    key = f"api-t{latency_threads}"
    throughput(key, f"`GET /api`, wrk -t{latency_threads}", None)
    latency(key, f"`GET /api`, wrk -t{latency_threads}", "≤ 1/5")
    keys.append((key, f"/api (wrk -t{latency_threads})"))
r, e = (int((out / f"{a}.hwm-kb").read_text()) for a in ("rust", "express"))
rows.append(("peak RSS (VmHWM) after load", f"{r / 1024:.1f} MiB", f"{e / 1024:.1f} MiB",
             f"1/{e / r:.0f}", "≤ 1/20", "yes" if r * 20 <= e else "**no**"))
r, e = (float((out / f"{a}.startup-ms").read_text()) for a in ("rust", "express"))
rows.append(("exec → first 200 (median)", f"{r:.1f} ms", f"{e:.1f} ms", f"1/{e / r:.0f}",
             "≤ 20 ms", "yes" if r <= 20 else "**no**"))

print(f"| metric | demo-app (Rust) | Express {express_version} | ratio | target | met |")
print("| --- | ---: | ---: | ---: | --- | --- |")
for row in rows:
    print("| " + " | ".join(row) + " |")
foreign = [tuple(map(float, p.read_text().split())) for p in sorted(out.glob("wrk-*.txt.foreign"))]
print()
print(f"Each kept run: at most {max(f for f, _ in foreign):.1f}% of the CPUs used by other "
      f"processes; {sum(int(a) - 1 for _, a in foreign)} run(s) repeated because of them.")
print()
print("Per-run requests/s and p99 (ms), in run order:")
print()
for app in ("rust", "express"):
    for key, label in keys:
        runs_text = ", ".join(f"{rps:,.0f} / {p99:.2f}" for rps, p99 in
                              (wrk(app, key, r) for r in range(1, runs + 1)))
        print(f"- {app} `{label}`: {runs_text}")
PY

cat <<EOF

CPU busy (all processes) in the 3 s before the load started: $busy_before%.
Settings: wrk -t$THREADS (and -t$LATENCY_THREADS on /api) -c$CONNECTIONS -d$DURATION --latency, $RUNS runs alternating, $WARMUP warm-up per endpoint, $STARTS starts per app; node $(node --version).
EOF
