import { cpuBackend } from '@shardmesh/engine'
import { quantizeCheckpoint, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
const dt = process.argv[2] ?? 'F32'
let model = syntheticModel(SYNTHETIC_PRESETS['synthetic-100m'])
if (dt !== 'F32') model = quantizeCheckpoint(model, dt as any)
const stage = await cpuBackend().createStage({ config: model.config, layers: [0, 12], tensors: model.tensors })
const s = stage.createSession()
let out = await s.forward({ position: 0, tokens: [1,2,3,4,5,6,7,8] }, { sample: {} })
for (let i = 0; i < 6; i++) { const t0 = performance.now(); out = await s.forward({ position: 8 + i, tokens: [out.token!] }, { sample: {} }); console.log('decode ms', (performance.now() - t0).toFixed(1)) }
