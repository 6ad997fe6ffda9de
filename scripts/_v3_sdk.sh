# Sourced by scripts/test: a side venv with claude-code-sdk 0.0.10, the SDK the real V3 ran on (V3's module
# patches internals that 0.0.25 no longer has), so the migration tests compare our drop-in with V3's
# behaviour on V3's own SDK. Exports CLAUDE_SCOPE_V3_PYTHON; without it those comparisons are skipped, loudly.
V3_SDK_VERSION="0.0.10"
v3_venv="$root/.cache/v3-sdk-$V3_SDK_VERSION"
if [ ! -f "$v3_venv/.installed" ]; then
    echo "== creating .cache/v3-sdk-$V3_SDK_VERSION (claude-code-sdk==$V3_SDK_VERSION, for the V3 comparisons)"
    rm -rf "$v3_venv"
    if "${PYTHON:-python3}" -m venv "$v3_venv" \
            && "$v3_venv/bin/python" -m pip install --quiet "claude-code-sdk==$V3_SDK_VERSION" psutil >"$root/.cache/v3-sdk.log" 2>&1; then
        touch "$v3_venv/.installed"
    else
        echo "!! could not install claude-code-sdk==$V3_SDK_VERSION (see .cache/v3-sdk.log): V3 comparisons will be skipped"
    fi
fi
if [ -f "$v3_venv/.installed" ]; then
    export CLAUDE_SCOPE_V3_PYTHON="$v3_venv/bin/python"
fi
