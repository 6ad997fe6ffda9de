# Sourced by scripts/test: Debian's Chromium for the run page's browser tests (tests/orchestrator/test_run_page.py),
# installed with apt where it is missing and apt can be used; otherwise those tests are skipped, with the reason.
if command -v chromium >/dev/null 2>&1; then
    export CLAUDE_SCOPE_CHROMIUM="$(command -v chromium)"
elif command -v apt-get >/dev/null 2>&1; then
    as_root=""
    if [ "$(id -u)" != "0" ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root="sudo -n"; fi
    fi
    if [ "$(id -u)" = "0" ] || [ -n "$as_root" ]; then
        echo "== installing Debian's chromium for the run page's browser tests (apt)"
        mkdir -p "$root/.cache"
        if $as_root apt-get update -qq >"$root/.cache/apt-chromium.log" 2>&1 && \
           DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium \
               >>"$root/.cache/apt-chromium.log" 2>&1; then
            export CLAUDE_SCOPE_CHROMIUM="$(command -v chromium)"
        else
            echo "!! apt could not install chromium (see .cache/apt-chromium.log): the browser tests will be skipped"
            tail -3 "$root/.cache/apt-chromium.log"
        fi
    else
        echo "!! chromium is missing and apt needs root: the run page's browser tests will be skipped"
    fi
else
    echo "!! chromium is missing and there is no apt here: the run page's browser tests will be skipped"
fi
