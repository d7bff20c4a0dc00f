/** WGSL sources imported as text by browser bundles (esbuild text loader, Vite plugin). */
declare module '*.wgsl' {
  const source: string
  export default source
}
