// `vite build` → dist/ (gitignored), served by `shardmesh start` at `/dashboard/`
// (node-bootstrap/src/http/dashboard.ts). Relative asset URLs: the page works under any prefix.
import { defineConfig } from 'vite'

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true
  }
})
