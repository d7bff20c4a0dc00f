import { cpuBackend } from '@shardmesh/engine'
import { goldenSuite } from './suite.ts'

goldenSuite('cpu', async () => cpuBackend())
