#!/usr/bin/env bash
# Set everything up, then run the demo: stories260K generates a story on the CPU engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/pnpm.sh
pnpm run --silent demo "$@"
