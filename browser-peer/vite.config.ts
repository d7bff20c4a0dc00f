// `vite build` → dist/ (gitignored), served by `shardmesh start` at `/`. The engine's browser
// map swaps in navigator.gpu and imports the WGSL kernels as modules: load them as text.
import { defineConfig } from 'vite'
import type { Plugin } from 'vite'

const wgslText: Plugin = {
  name: 'wgsl-text',
  transform: (code, id) => id.endsWith('.wgsl') ? { code: 'export default ' + JSON.stringify(code), map: null } : undefined
}

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  plugins: [wgslText],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 4096
  },
  worker: { format: 'es', plugins: () => [wgslText] }
})
