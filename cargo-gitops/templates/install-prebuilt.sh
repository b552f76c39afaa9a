# Installs the prebuilt cargo-gitops GITOPS_VERSION for this machine's platform: downloads the
# release archive, checks it against the SHA-256 pinned for the platform, unpacks it and puts
# it on PATH. The same script runs as a GitHub Actions step and in a GitLab CI job, in bash or
# a plain POSIX sh (Alpine's busybox). Every value comes from the environment (neither CI
# expands anything here):
#   GITOPS_VERSION            the exact version
#   GITOPS_RELEASE_BASE_URL   where releases are: {base}/cargo-gitops-v{version}/{archive};
#                             set it to use a mirror (plain http only to 127.0.0.1/localhost)
#   GITOPS_SHA256_<TARGET>    the pinned SHA-256 of each target's archive
#   RUNNER_OS, RUNNER_ARCH    the platform, as GitHub Actions names it; else `uname`'s
#   GITOPS_INSTALL_DIR        a folder on PATH to copy the binary into (GitLab jobs); on
#                             GitHub the archive's folder goes to GITHUB_PATH instead
# It downloads with curl, else wget; a Debian image with neither (rust:*-slim) gets curl from
# apt-get when the job runs as root. Any failure is one line on stderr (a GitHub error
# annotation on GitHub), and exit status 1.
set -eu
# pipefail where the shell has it (bash, busybox ash; not every dash).
if (set -o pipefail) 2>/dev/null; then set -o pipefail; fi

fail() {
  if [ -n "${GITLAB_CI:-}" ]; then
    printf 'error: install cargo-gitops: %s\n' "$*" >&2
  else
    printf '::error::install cargo-gitops: %s\n' "$*" >&2
  fi
  exit 1
}

version=${GITOPS_VERSION:-}
base=${GITOPS_RELEASE_BASE_URL:-}
[ -n "$version" ] || fail "GITOPS_VERSION is not set"
case "$version" in
  *[!0-9A-Za-z.+-]*) fail "GITOPS_VERSION is not a version: $version" ;;
esac
# The URL's authority (what lies between `//` and the first `/`, `?` or `#`) is parsed, not
# matched as a prefix: in http://127.0.0.1:80@mirror.example/ the host is mirror.example.
# The refused URL is shown without its userinfo, which may be a password.
not_allowed() {
  fail "GITOPS_RELEASE_BASE_URL must be an https URL without credentials, query or fragment (plain http only to 127.0.0.1 or localhost), not '${1:-$base}'"
}
case "$base" in
  *[?#]*) not_allowed ;;
  https://*) scheme=https ;;
  http://*) scheme=http ;;
  *) not_allowed ;;
esac
authority=${base#"$scheme://"}
authority=${authority%%[/?#]*}
case "$authority" in
  *@*) not_allowed "$scheme://***@${authority##*@}" ;;
esac
host=${authority%:*}
port=${authority#"$host"}
port=${port#:}
case "$port" in
  *[!0-9]*) not_allowed ;;
esac
[ -n "$host" ] || not_allowed
if [ "$scheme" = http ]; then
  case "$host" in
    127.0.0.1 | localhost) ;;
    *) not_allowed ;;
  esac
fi
base=${base%/}

os=${RUNNER_OS:-}
arch=${RUNNER_ARCH:-}
if [ -z "$os" ]; then
  case "$(uname -s)" in
    Linux) os=Linux ;;
    Darwin) os=macOS ;;
    *) os=$(uname -s) ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=X64 ;;
    aarch64 | arm64) arch=ARM64 ;;
    *) arch=$(uname -m) ;;
  esac
fi
case "$os/$arch" in
  Linux/X64) target=x86_64-unknown-linux-musl want=${GITOPS_SHA256_X86_64_UNKNOWN_LINUX_MUSL:-} ;;
  Linux/ARM64) target=aarch64-unknown-linux-musl want=${GITOPS_SHA256_AARCH64_UNKNOWN_LINUX_MUSL:-} ;;
  macOS/X64) target=x86_64-apple-darwin want=${GITOPS_SHA256_X86_64_APPLE_DARWIN:-} ;;
  macOS/ARM64) target=aarch64-apple-darwin want=${GITOPS_SHA256_AARCH64_APPLE_DARWIN:-} ;;
  *) fail "there is no prebuilt cargo-gitops for runner platform '$os/$arch' (only Linux and macOS on X64 and ARM64); set install.mode = \"cargo\" in the configuration" ;;
esac
[ -n "$want" ] || fail "no SHA-256 is pinned for $target; run 'cargo gitops pins update', then 'cargo gitops init-workflows'"

name="cargo-gitops-$target-v$version"
url="$base/cargo-gitops-v$version/$name.tar.gz"
work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/cargo-gitops.XXXXXX")
archive="$work/$name.tar.gz"

if ! command -v curl >/dev/null 2>&1 && ! command -v wget >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends curl ca-certificates; } \
      >"$work/apt.log" 2>&1 \
      || fail "the image has neither curl nor wget, and apt-get could not install curl: $(tail -n 1 "$work/apt.log")"
  else
    fail "the image has neither curl nor wget to download $url; use an image that has one, or set install.mode = \"cargo\""
  fi
fi
if command -v curl >/dev/null 2>&1; then
  status=$(curl --silent --show-error --location --proto-redir '=https' --retry 3 \
    --connect-timeout 10 --max-time 300 --output "$archive" --write-out '%{http_code}' \
    "$url" 2>"$work/download.log") || true
else
  # wget (GNU or busybox) prints the response headers with -S; the last status line counts.
  wget -S -T 60 -O "$archive" "$url" 2>"$work/download.log" || true
  status=$(sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$work/download.log" | tail -n 1)
  [ -n "$status" ] || status=000
fi
case "$status" in
  200) ;;
  404) fail "$url is missing (HTTP 404): is cargo-gitops $version released for $target? check install.version and install.base-url" ;;
  000 | "") fail "cannot download $url: $(tail -n 1 "$work/download.log")" ;;
  *) fail "cannot download $url: HTTP $status" ;;
esac

if command -v sha256sum >/dev/null 2>&1; then
  got=$(sha256sum "$archive" | cut -d ' ' -f 1)
else
  got=$(shasum -a 256 "$archive" | cut -d ' ' -f 1)
fi
[ "$got" = "$want" ] || fail "$url has SHA-256 $got, but the workflow pins $want: refusing an archive that is not the one pinned"

tar -xzf "$archive" -C "$work" 2>"$work/tar.log" || fail "cannot unpack $url: $(tail -n 1 "$work/tar.log")"
bin_dir="$work/$name"
[ -f "$bin_dir/cargo-gitops" ] && [ -x "$bin_dir/cargo-gitops" ] \
  || fail "$url has no executable $name/cargo-gitops"
installed=$("$bin_dir/cargo-gitops" --version 2>&1 | head -n 1) \
  || fail "the cargo-gitops of $url does not run on this runner: $installed"
[ "$installed" = "cargo-gitops $version" ] \
  || fail "$url holds '$installed', not cargo-gitops $version"

if [ -n "${GITHUB_PATH:-}" ]; then
  printf '%s\n' "$bin_dir" >>"$GITHUB_PATH"
fi
if [ -n "${GITOPS_INSTALL_DIR:-}" ]; then
  { mkdir -p "$GITOPS_INSTALL_DIR" && cp "$bin_dir/cargo-gitops" "$GITOPS_INSTALL_DIR/cargo-gitops"; } 2>"$work/copy.log" \
    || fail "cannot copy cargo-gitops into $GITOPS_INSTALL_DIR: $(tail -n 1 "$work/copy.log")"
  bin_dir=$GITOPS_INSTALL_DIR
fi
echo "installed $installed for $target from $url (SHA-256 $got) in $bin_dir"
