#!/usr/bin/env bash
# Install everything the project needs on a fresh machine: pnpm (from the npm registry),
# the workspace's packages and the Node 22 binary pinned as a devDependency; Debian's
# chromium, iproute2 and xvfb for the browser tests (scripts/install-system.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system.sh
source scripts/pnpm.sh
pnpm install --frozen-lockfile
# the browser peer page (browser-peer/dist, served by `shardmesh start` at /)
pnpm --filter @shardmesh/browser-peer run build
# the dashboard (dashboard/dist, served by `shardmesh start` at /dashboard/)
pnpm --filter @shardmesh/dashboard run build
