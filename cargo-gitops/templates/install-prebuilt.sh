# Installs the prebuilt cargo-gitops GITOPS_VERSION for this runner's platform: downloads the
# release archive, checks it against the SHA-256 the workflow pins for the platform, unpacks it
# and puts it on PATH. Every value comes from the environment (GitHub expands nothing here):
#   GITOPS_VERSION            the exact version
#   GITOPS_RELEASE_BASE_URL   where releases are: {base}/cargo-gitops-v{version}/{archive};
#                             set it to use a mirror (plain http only to 127.0.0.1/localhost)
#   GITOPS_SHA256_<TARGET>    the pinned SHA-256 of each target's archive
#   RUNNER_OS, RUNNER_ARCH    the platform, as GitHub Actions names it
# Any failure is one line on stderr, as a GitHub error annotation, and exit status 1.
set -euo pipefail

fail() {
  printf '::error::install cargo-gitops: %s\n' "$*" >&2
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

case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
  Linux/X64) target=x86_64-unknown-linux-musl want=${GITOPS_SHA256_X86_64_UNKNOWN_LINUX_MUSL:-} ;;
  Linux/ARM64) target=aarch64-unknown-linux-musl want=${GITOPS_SHA256_AARCH64_UNKNOWN_LINUX_MUSL:-} ;;
  macOS/X64) target=x86_64-apple-darwin want=${GITOPS_SHA256_X86_64_APPLE_DARWIN:-} ;;
  macOS/ARM64) target=aarch64-apple-darwin want=${GITOPS_SHA256_AARCH64_APPLE_DARWIN:-} ;;
  *) fail "there is no prebuilt cargo-gitops for runner platform '${RUNNER_OS:-}/${RUNNER_ARCH:-}' (only Linux and macOS on X64 and ARM64); set install.mode = \"cargo\" in the configuration" ;;
esac
[ -n "$want" ] || fail "no SHA-256 is pinned for $target; run 'cargo gitops pins update', then 'cargo gitops init-workflows'"

name="cargo-gitops-$target-v$version"
url="$base/cargo-gitops-v$version/$name.tar.gz"
work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/cargo-gitops.XXXXXX")
archive="$work/$name.tar.gz"

status=$(curl --silent --show-error --location --proto-redir '=https' --retry 3 \
  --connect-timeout 10 --max-time 300 --output "$archive" --write-out '%{http_code}' \
  "$url" 2>"$work/curl.log") || true
case "$status" in
  200) ;;
  404) fail "$url is missing (HTTP 404): is cargo-gitops $version released for $target? check install.version and install.base-url" ;;
  000 | "") fail "cannot download $url: $(tail -n 1 "$work/curl.log")" ;;
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
echo "installed $installed for $target from $url (SHA-256 $got) in $bin_dir"
