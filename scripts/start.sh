#!/usr/bin/env bash
# Set everything up, then run the main job: a mesh (bootstrap + 2 local peers) serving
# stories260K, with the peer page and dashboard URLs printed and one story streamed through
# the pipeline as a demo; it keeps serving until Ctrl-C. Extra arguments go to `shardmesh start`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/pnpm.sh
pnpm run --silent demo "$@"
