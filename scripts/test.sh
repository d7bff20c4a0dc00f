#!/usr/bin/env bash
# Set everything up, then type-check, lint and run the whole test suite (what CI runs).
# Extra arguments go to vitest (e.g. a path to run one suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/pnpm.sh
pnpm run typecheck
pnpm run lint
mkdir -p .cache
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=.cache/test-results.json "$@" || status=$?
if [ -f .cache/test-results.json ]; then
  node_modules/.bin/node scripts/test-summary.ts .cache/test-results.json
fi
exit "$status"
