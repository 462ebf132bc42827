# Shared by the scripts that build pinned Go modules into a cache outside the clone (e2e/kube/build.sh,
# e2e/istiod/build.sh). Source it after defining `log MESSAGE` and `die MESSAGE` (each script logs under
# its own name).

# The version a go.mod requires of a module, e.g. `go_mod_version e2e/kube/apiserver/go.mod k8s.io/kubernetes`.
go_mod_version() { # go_mod_version GO_MOD MODULE
  awk -v m="$2" '($1 == m && $2 ~ /^v/) { print $2; exit } ($1 == "require" && $2 == m) { print $3; exit }' "$1"
}

# Finds `go` (also in the official tarball's /usr/local/go/bin, which a non-login shell's PATH lacks) and
# checks that it is Go >= 1.MIN_MINOR, else dies saying HINT. Sets go_version (e.g. go1.26.8).
go_require() { # go_require MIN_MINOR HINT
  local min_minor="$1" hint="$2"
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then PATH="$PATH:/usr/local/go/bin"; fi
  command -v go >/dev/null 2>&1 || die "\`go\` was not found on PATH: $hint"
  go_version="$(go env GOVERSION 2>/dev/null || true)"
  if [[ ! "$go_version" =~ ^go1\.([0-9]+) ]] || ((BASH_REMATCH[1] < min_minor)); then
    die "found ${go_version:-an unknown Go version} at $(command -v go): $hint"
  fi
}

# Creates the cache directory DIR and holds a lock on it (fd 9) until the script ends: two builds at once
# (two checkouts, a test and a manual run) would only race for the same files. Returns 1 when another build
# held the lock and this one waited for it: that build may have made what the caller wants, so look again.
go_cache_lock() { # go_cache_lock DIR
  # (Called in a condition, where set -e does not apply: fail explicitly.)
  { mkdir -p "$1" && exec 9>"$1/.lock"; } || die "cannot create the cache directory $1"
  flock -n 9 && return 0
  log "another build of $1 is running; waiting for it"
  flock 9
  return 1
}
