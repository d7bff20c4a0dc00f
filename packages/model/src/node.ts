// Node-only entry (`@shardmesh/model/node`): file system and network loaders.
export { readSafetensorsModel } from './safetensors/read.ts'
export { writeSafetensorsModel } from './safetensors/write.ts'
export { fetchModel, progressBar } from './fetch.ts'
export type { FetchProgress } from './fetch.ts'
export { loadModel, loadTokenizer } from './load.ts'
export type { LoadModelOptions } from './load.ts'
export { loadComponentModel, saveComponentModel } from './components/files.ts'
