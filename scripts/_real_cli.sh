# Sourced by scripts/test: install the real Claude Code CLI (pinned) into .cache/claude-cli with npm, and
# export CLAUDE_SCOPE_REAL_CLI for the real-CLI test tier. Without npm the tier is skipped, loudly.
CLAUDE_CLI_VERSION="2.1.197"   # the newest that runs on Node 20
real_dir="$root/.cache/claude-cli"
if command -v npm >/dev/null 2>&1; then
    if [ ! -f "$real_dir/.installed-$CLAUDE_CLI_VERSION" ]; then
        echo "== installing @anthropic-ai/claude-code@$CLAUDE_CLI_VERSION into .cache/claude-cli (npm)"
        mkdir -p "$real_dir"
        if npm install --no-audit --no-fund --loglevel=error --prefix "$real_dir" \
                "@anthropic-ai/claude-code@$CLAUDE_CLI_VERSION" >"$real_dir/npm.log" 2>&1; then
            touch "$real_dir/.installed-$CLAUDE_CLI_VERSION"
        else
            echo "!! npm install of the real CLI failed (see $real_dir/npm.log): the real-CLI tier will be skipped"
            tail -5 "$real_dir/npm.log"
        fi
    fi
    # The platform package's native binary, else the wrapper package's bin (its postinstall links the binary).
    for candidate in "$real_dir"/node_modules/@anthropic-ai/claude-code-linux-*/claude \
                     "$real_dir/node_modules/@anthropic-ai/claude-code/bin/claude.exe"; do
        if [ -x "$candidate" ] && [ "$(stat -c %s "$candidate")" -gt 1000000 ]; then
            export CLAUDE_SCOPE_REAL_CLI="$candidate"
            break
        fi
    done
else
    echo "!! npm is not installed: the real-CLI test tier will be SKIPPED (install Node.js/npm to run it)"
fi
if [ -z "${CLAUDE_SCOPE_REAL_CLI:-}" ]; then
    echo "!! no real claude CLI available: tests/real_cli will be skipped"
fi
