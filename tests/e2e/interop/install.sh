#!/usr/bin/env bash
# Install what tests/e2e/test_interop.py needs: a Go toolchain and Go's reference transparency-log
# packages (golang.org/x/mod/sumdb/tlog and sumdb/note), both from Debian, so the interop client
# builds offline (GOPATH mode against /usr/share/gocode; no Go module proxy). Idempotent and quiet:
# does nothing when both are present; prints apt's output only if it fails.
set -euo pipefail
# shellcheck source=tests/e2e/apt.sh
. "$(dirname "$0")/../apt.sh"

GOCODE=/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog
go_and_tlog_present() { command -v go >/dev/null 2>&1 && [ -d "$GOCODE" ]; }

apt_ensure tests/e2e/interop/install.sh go_and_tlog_present golang-go golang-golang-x-mod-dev
