# Sourced by the install scripts of the end-to-end tests (tests/e2e/browser/install.sh,
# tests/e2e/interop/install.sh): what they need comes from Debian's archive, never a download.
#
# apt_ensure WHO PRESENT PACKAGE...
#   WHO names the calling script in messages; PRESENT is a command (a shell function) that
#   succeeds once what the tests need is there. Idempotent and quiet: nothing happens when PRESENT
#   already succeeds; apt's output is printed only if the installation fails; exits 1 if it fails
#   or if PRESENT still fails afterwards.

apt_ensure() {
    local who="$1" present="$2"
    shift 2
    if "$present"; then
        return 0
    fi

    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo -n)
        else
            echo "$who: need root (or sudo) to apt-get install $*" >&2
            exit 1
        fi
    fi

    local log
    log="$(mktemp)"
    if ! {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends "$@"
    } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "$who: installing $* failed" >&2
        exit 1
    fi
    rm -f "$log"

    if ! "$present"; then
        echo "$who: installed $* but $present still fails" >&2
        exit 1
    fi
}
