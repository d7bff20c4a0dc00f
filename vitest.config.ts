import { defineConfig } from 'vitest/config'

/** In-process tests of one module: fail fast when one hangs (a test that needs longer says so itself). */
const unit = ['packages/*/test/**/*.test.ts', ...['chaos-plan', 'metrics', 'peer-key', 'peer-page'].map(f => `node-bootstrap/test/${f}.test.ts`)]

export default defineConfig({
  test: {
    projects: [
      { extends: true, test: { name: 'unit', include: unit, testTimeout: 30_000, hookTimeout: 30_000 } },
      {
        // child processes, meshes of real peers and browsers
        extends: true,
        test: { name: 'integration', include: ['node-bootstrap/test/**/*.test.ts', 'test/**/*.test.ts'], exclude: unit, testTimeout: 120_000, hookTimeout: 120_000 }
      }
    ]
  }
})
