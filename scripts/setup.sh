#!/usr/bin/env bash
# Install everything the project needs on a fresh machine: pnpm (from the npm registry),
# the workspace's packages and the Node 22 binary pinned as a devDependency.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pnpm.sh
pnpm install --frozen-lockfile
