#!/usr/bin/env bash
# Install what tests/e2e/test_interop.py needs: a Go toolchain and Go's reference transparency-log
# packages (golang.org/x/mod/sumdb/tlog and sumdb/note), both from Debian, so the interop client
# builds offline (GOPATH mode against /usr/share/gocode; no Go module proxy). Idempotent and quiet:
# does nothing when both are present; prints apt's output only if it fails.
set -euo pipefail

GOCODE=/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog
PACKAGES=(golang-go golang-golang-x-mod-dev)

if command -v go >/dev/null 2>&1 && [ -d "$GOCODE" ]; then
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "tests/e2e/interop/install.sh: need root (or sudo) to apt-get install ${PACKAGES[*]}" >&2
        exit 1
    fi
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
} >"$log" 2>&1; then
    cat "$log" >&2
    echo "tests/e2e/interop/install.sh: installing ${PACKAGES[*]} failed" >&2
    exit 1
fi

if ! command -v go >/dev/null 2>&1 || [ ! -d "$GOCODE" ]; then
    echo "tests/e2e/interop/install.sh: installed ${PACKAGES[*]} but go or $GOCODE is still missing" >&2
    exit 1
fi
