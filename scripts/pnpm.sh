# Sourced by the other scripts: `pnpm` is the pinned version, fetched through npx if absent.
PNPM_VERSION=12.21.0
pnpm () {
  npx -y "pnpm@${PNPM_VERSION}" "$@"
}
