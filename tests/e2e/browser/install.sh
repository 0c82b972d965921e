#!/usr/bin/env bash
# Install what tests/e2e/browser needs: Debian's headless Chromium (never a downloaded browser).
# Idempotent and quiet: does nothing when chromium is present; prints apt's output only on failure.
set -euo pipefail
# shellcheck source=tests/e2e/apt.sh
. "$(dirname "$0")/../apt.sh"

chromium_present() { command -v chromium >/dev/null 2>&1; }

apt_ensure tests/e2e/browser/install.sh chromium_present chromium
