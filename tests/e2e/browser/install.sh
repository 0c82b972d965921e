#!/usr/bin/env bash
# Install what tests/e2e/browser needs: Debian's headless Chromium (never a downloaded browser).
# Idempotent and quiet: does nothing when chromium is present; prints apt's output only on failure.
set -euo pipefail

PACKAGES=(chromium)

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "tests/e2e/browser/install.sh: need root (or sudo) to apt-get install ${PACKAGES[*]}" >&2
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
    echo "tests/e2e/browser/install.sh: installing ${PACKAGES[*]} failed" >&2
    exit 1
fi

command -v chromium >/dev/null 2>&1 || {
    echo "tests/e2e/browser/install.sh: installed ${PACKAGES[*]} but chromium is still missing" >&2
    exit 1
}
