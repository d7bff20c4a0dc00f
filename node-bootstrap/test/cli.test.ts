import { once } from 'node:events'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { writeGguf, syntheticModel, SYNTHETIC_PRESETS } from '@shardmesh/model'
import { storiesDir } from '../../test/fixtures.ts'
import { shardmesh } from './run-cli.ts'



const dir = storiesDir()
const golden = JSON.parse(await readFile(join(dir, 'golden.json'), 'utf8')) as { cases: Array<{ prompt: string, steps: number, num_prompt_tokens: number, prompt_tokens: number[], generated_tokens: number[], text: string }> }
const once_ = golden.cases.find(c => c.prompt === 'Once upon a time')!

describe('shardmesh generate --local', () => {
  it('prints the golden generation as one JSON object', async () => {
    const n = once_.steps - once_.num_prompt_tokens + 1
    const r = await shardmesh(['generate', '--local', '--model', join(dir, 'stories260K.bin'), '--tokenizer', join(dir, 'tok512.bin'), '--prompt', once_.prompt, '--max-tokens', String(n), '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.prompt_tokens).toEqual(once_.prompt_tokens)
    expect(out.generated_tokens).toEqual(once_.generated_tokens)
    expect(out.text).toBe(once_.text)
    expect(out.finish_reason).toBe('length')
    expect(out.timings.decode_tokens_per_second).toBeGreaterThan(0)
    expect(out.timings.prefill_tokens_per_second).toBeGreaterThan(0)
  })

  it('gives the same tokens split into stages, and streams text without --json', async () => {
    const args = ['generate', '--local', '--model', join(dir, 'stories260K.gguf'), '--prompt', 'The dog', '--max-tokens', '30']
    const whole = JSON.parse((await shardmesh([...args, '--json'])).stdout)
    const split = JSON.parse((await shardmesh([...args, '--stages', '3', '--json'])).stdout)
    expect(split.stages).toEqual([[0, 2], [2, 4], [4, 5]])
    expect(split.generated_tokens).toEqual(whole.generated_tokens)
    const text = await shardmesh(args)
    expect(text.code).toBe(0)
    expect(text.stdout.trimEnd()).toBe(whole.text)
    expect(text.stderr).toMatch(/decode [\d.]+ tok\/s/)
  })

  it('downloads an http(s) model once into the cache', async () => {
    const bytes = await readFile(join(dir, 'stories260K.gguf'))
    let requests = 0
    const server = createServer((_req, res) => { requests++; res.setHeader('content-length', bytes.length); res.end(bytes) })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/stories260K.gguf`
      const cache = await mkdtemp(join(tmpdir(), 'shardmesh-cache-'))
      const args = ['generate', '--local', '--model', url, '--prompt', 'Once upon a time', '--max-tokens', '10', '--json']
      const first = await shardmesh(args, { SHARDMESH_CACHE: cache })
      expect(first.code).toBe(0)
      expect(JSON.parse(first.stdout).generated_tokens).toEqual(once_.generated_tokens.slice(0, 10))
      const second = await shardmesh(args, { SHARDMESH_CACHE: cache })
      expect(JSON.parse(second.stdout).generated_tokens).toEqual(once_.generated_tokens.slice(0, 10))
      expect(requests).toBe(1)
    } finally {
      server.close()
    }
  })

  it('prints help for the CLI and for generate', async () => {
    const top = await shardmesh(['--help'])
    expect(top.stdout).toMatch(/generate/)
    const gen = await shardmesh(['generate', '--help'])
    expect(gen.code).toBe(0)
    for (const flag of ['--model', '--tokenizer', '--prompt', '--max-tokens', '--temperature', '--seed', '--json']) expect(gen.stdout).toContain(flag)
  })
})

describe('bad input gets one clear line, never a bare stack trace', () => {
  async function expectError (args: string[], pattern: RegExp): Promise<void> {
    const r = await shardmesh(['generate', '--local', ...args, '--prompt', 'hi'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(pattern)
    expect(r.stderr).not.toMatch(/^\s+at /m)
  }

  it('a truncated checkpoint', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'shardmesh-bad-'))
    const bin = await readFile(join(dir, 'stories260K.bin'))
    await writeFile(join(tmp, 'cut.bin'), bin.subarray(0, 500_000))
    await expectError(['--model', join(tmp, 'cut.bin'), '--tokenizer', join(dir, 'tok512.bin')], /TruncatedCheckpointError: .*cut\.bin/)
    const gguf = await readFile(join(dir, 'stories260K.gguf'))
    await writeFile(join(tmp, 'cut.gguf'), gguf.subarray(0, 100_000))
    await expectError(['--model', join(tmp, 'cut.gguf')], /TruncatedCheckpointError: .*cut\.gguf/)
  })

  it('a corrupt checkpoint, an unknown architecture and an unsupported tensor type', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'shardmesh-bad-'))
    const gguf = new Uint8Array(writeGguf(syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])))
    const text = Buffer.from(gguf).toString('latin1')
    // general.architecture = "llama" → "llamb"
    const arch = Buffer.from(gguf)
    arch.write('llamb', text.indexOf('llama', text.indexOf('general.architecture')), 'latin1')
    await writeFile(join(tmp, 'arch.gguf'), arch)
    await expectError(['--model', join(tmp, 'arch.gguf')], /UnsupportedArchitectureError: .*llamb.*arch\.gguf|UnsupportedArchitectureError: .*arch\.gguf.*llamb/)
    // the first tensor's ggml type id → 14 (Q6_K)
    const typed = Buffer.from(gguf)
    const name = 'token_embd.weight'
    const at = text.indexOf(name) + name.length
    const nDims = typed.readUInt32LE(at)
    typed.writeUInt32LE(14, at + 4 + nDims * 8)
    await writeFile(join(tmp, 'type.gguf'), typed)
    await expectError(['--model', join(tmp, 'type.gguf')], /UnsupportedTensorTypeError: .*token_embd\.weight/)
    const magic = Buffer.from(gguf)
    magic.write('GGUX', 0, 'latin1')
    await writeFile(join(tmp, 'magic.bin'), magic)
    await expectError(['--model', join(tmp, 'magic.bin'), '--tokenizer', join(dir, 'tok512.bin')], /(Corrupt|Truncated)CheckpointError: .*magic\.bin/)
  })

  it('a prompt longer than the context, and bad flags', async () => {
    const long = 'Once upon a time there was a dog. '.repeat(120)
    const r = await shardmesh(['generate', '--local', '--model', join(dir, 'stories260K.bin'), '--tokenizer', join(dir, 'tok512.bin'), '--prompt', long])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/ContextLengthError: the prompt is \d+ tokens; the model's context is 512/)
    const flags = await shardmesh(['generate', '--local', '--model', join(dir, 'stories260K.gguf'), '--temperature', 'hot'])
    expect(flags.code).toBe(2)
    expect(flags.stderr).toMatch(/--temperature must be a number >= 0, got "hot"/)
    const missing = await shardmesh(['generate', '--local', '--model', join(dir, 'nope.gguf')])
    expect(missing.stderr).toMatch(/nope\.gguf does not exist/)
  })
})

describe('a tokenizer that does not fit the model', () => {
  it('is refused with both files named', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'shardmesh-tok-'))
    // a model with a 400-row embedding table and a 512-piece tokenizer
    await writeFile(join(tmp, 'small.gguf'), writeGguf(syntheticModel(SYNTHETIC_PRESETS['tiny-gqa2'])))
    const r = await shardmesh(['generate', '--local', '--model', join(tmp, 'small.gguf'), '--tokenizer', join(dir, 'stories260K.gguf'), '--prompt', 'hi'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/CorruptCheckpointError: tokenizer .*stories260K\.gguf has 512 pieces, more than the 400 rows of .*small\.gguf/)
  })
})
