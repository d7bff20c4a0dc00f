import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenizer } from '@shardmesh/model'
import { loadModel } from '@shardmesh/model/node'
import type { MeshNode } from '@shardmesh/mesh'
import { DEFAULT_FAULT_TOLERANCE, Endpoint, Head, RecoveryLog } from '@shardmesh/pipeline'
import { storiesDir } from '../fixtures.ts'
import { startNode } from './local.ts'

describe('head without a plan', () => {
  let node: MeshNode
  let head: Head
  beforeAll(async () => {
    const model = await loadModel(join(storiesDir(), 'stories260K.gguf'))
    node = await startNode()
    head = new Head({ endpoint: new Endpoint(node), mesh: node.services.mesh, config: model.config, tokenizer: createTokenizer(model.tokenizer!), readyTimeoutMs: 300, faultTolerance: DEFAULT_FAULT_TOLERANCE, recoveries: new RecoveryLog() })
    await head.start()
  })
  afterAll(async () => {
    await head?.stop()
    await node?.stop()
  })

  it('answers an OpenAI-style 503 once its bounded wait for a plan is over', async () => {
    await expect(head.generate({ promptTokens: [1, 403], maxTokens: 4 })).rejects.toMatchObject({ name: 'ApiError', status: 503, code: 'pipeline_not_ready', type: 'server_error' })
  })
})
