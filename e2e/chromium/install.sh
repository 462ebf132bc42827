#!/usr/bin/env bash
# Debian's Chromium for the browser tests (e2e/local/routemap.test.ts drives it with playwright-core): installs
# the `chromium` package with apt-get when /usr/bin/chromium is missing, and does nothing when it is there.
# Playwright's own browser download is not used: it needs hosts this project's CI cannot reach, and Debian's
# build is what the machines have. Needs root (CI runs as root) or a chromium already installed.
# MESHGATE_CHROMIUM names another browser binary (then nothing is installed).
# Progress goes to stderr; the last line on stdout is the browser's path.
# Usage: bash e2e/chromium/install.sh
set -euo pipefail

log() { printf '[e2e/chromium/install] %s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf '[e2e/chromium/install] %s error: %s\n' "$(date +%H:%M:%S)" "$*" >&2
  exit 1
}

bin="${MESHGATE_CHROMIUM:-/usr/bin/chromium}"
if [[ -x "$bin" ]]; then
  log "present: $bin"
  printf '%s\n' "$bin"
  exit 0
fi
[[ -z "${MESHGATE_CHROMIUM:-}" ]] || die "MESHGATE_CHROMIUM=$bin is not an executable file"
command -v apt-get >/dev/null || die "$bin is missing and there is no apt-get to install Debian's chromium package: install Chromium and set MESHGATE_CHROMIUM to its path"
[[ "$(id -u)" == 0 ]] || die "$bin is missing and installing Debian's chromium package needs root: run 'sudo apt-get install chromium' (or set MESHGATE_CHROMIUM)"

log "installing Debian's chromium package (apt-get update first; about 100 MB)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || die "apt-get update failed"
apt-get install -y -qq --no-install-recommends chromium >&2 || die "apt-get install chromium failed"
[[ -x "$bin" ]] || die "the chromium package is installed but $bin is not there"
log "installed: $("$bin" --version 2>/dev/null || echo "$bin")"
printf '%s\n' "$bin"
