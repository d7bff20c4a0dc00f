import fc from 'fast-check'
import { expect } from 'vitest'
import { decodeComponent, decodeControl, decodeFrame, encodeComponent, encodeControl, encodeFrame, frameActivations, frameTokens, InvalidComponentMessageError, InvalidControlMessageError, InvalidFrameError, MAX_RANK } from '@shardmesh/protocol'
import type { ComponentMessage, ControlMessage, Frame, FrameDType, RouteHop } from '@shardmesh/protocol'
import { arbitraryText, expectTyped, mutatedBytes, mutatedJson, Tally } from '../harness.ts'
import type { Target } from '../harness.ts'

const ELEMENT_BYTES: Record<FrameDType, number> = { F32: 4, F16: 2, I32: 4 }
/** Byte offsets of the frame header fields: kind, step, position, dtype, rank, flags, payload length, shape dims. */
const FRAME_FIELDS = [2, 3, 20, 24, 28, 29, 30, 32, 36, 40, 44, 48]

/** Payload floats include NaN, ±∞, -0 and subnormals: frameActivations must refuse the non-finite ones. */
const floatBits = fc.oneof(fc.float({ noDefaultInfinity: false, noNaN: false }), fc.constantFrom(NaN, Infinity, -Infinity, -0, 1e-45))

const validFrame: fc.Arbitrary<Frame> = fc.record({
  kind: fc.constantFrom('activations' as const, 'tokens' as const, 'sampled' as const),
  session: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  step: fc.nat({ max: 2 ** 32 - 1 }),
  position: fc.nat({ max: 2 ** 32 - 1 }),
  dtype: fc.constantFrom('F32' as const, 'F16' as const, 'I32' as const),
  shape: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: MAX_RANK }),
  partial: fc.boolean(),
  replay: fc.boolean()
}).chain(f => {
  const n = f.shape.reduce((a, b) => a * b, 1)
  const payload = f.dtype === 'F32'
    ? fc.array(floatBits, { minLength: n, maxLength: n }).map(xs => new Uint8Array(Float32Array.from(xs).buffer))
    : fc.uint8Array({ minLength: n * ELEMENT_BYTES[f.dtype], maxLength: n * ELEMENT_BYTES[f.dtype] })
  return payload.map(p => ({ ...f, payload: p }))
})

/** The checks a stage runs on a decoded frame next (dim 1 or 6, vocab 512) may refuse it too, typed (not counted as cases). */
const stageChecks = new Tally()
function frameChecks (f: Frame): void {
  for (const dim of [1, 6]) expectTyped(stageChecks, [InvalidFrameError], () => frameActivations(f, dim))
  expectTyped(stageChecks, [InvalidFrameError], () => frameTokens(f, 512))
}

const hex = (n: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n })
const peerRef = fc.record({ peerId: fc.string({ maxLength: 60 }), addrs: fc.array(fc.string({ maxLength: 80 }), { maxLength: 4 }) })
const layers: fc.Arbitrary<[number, number]> = fc.tuple(fc.nat(1000), fc.integer({ min: 1, max: 100 })).map(([a, n]) => [a, a + n])
/** Whole layers, or units (attention_feedforward) with their covering layers. */
const span: fc.Arbitrary<{ layers: [number, number], units?: [number, number] }> = fc.oneof(
  layers.map(l => ({ layers: l })),
  fc.tuple(fc.nat(2000), fc.integer({ min: 1, max: 200 })).map(([u, n]) => ({ layers: [Math.floor(u / 2), Math.ceil((u + n) / 2)] as [number, number], units: [u, u + n] as [number, number] })))
const route: fc.Arbitrary<RouteHop[]> = fc.array(
  fc.tuple(fc.record({ peerId: fc.string({ maxLength: 60 }), addrs: fc.array(fc.string({ maxLength: 80 }), { maxLength: 3 }), mirror: fc.option(peerRef, { nil: undefined }) }, { requiredKeys: ['peerId', 'addrs'] }), span).map(([h, s]) => ({ ...h, ...s })),
  { minLength: 1, maxLength: 6 })
const u32 = fc.nat({ max: 2 ** 32 - 1 })

/** Every control message type, valid. */
export const validControl: fc.Arbitrary<ControlMessage> = hex(32).chain(session => fc.oneof(
  route.chain(r => fc.record({
    type: fc.constant('open' as const), session: fc.constant(session), model: fc.string({ maxLength: 40 }), hop: fc.nat(r.length - 1), route: fc.constant(r), head: peerRef,
    sampling: fc.record({ temperature: fc.double({ min: 0, max: 100, noNaN: true }), topK: fc.nat(1e7), topP: fc.double({ min: 0, max: 1, noNaN: true }), seed: u32 }),
    replayTo: fc.option(fc.nat(r.length - 1), { nil: undefined }), step: fc.option(u32, { nil: undefined }), shadow: fc.option(fc.constant(true), { nil: undefined })
  }, { requiredKeys: ['type', 'session', 'model', 'hop', 'route', 'head', 'sampling'] })),
  fc.constant({ type: 'close' as const, session }),
  fc.record({ type: fc.constant('error' as const), session: fc.constant(session), code: fc.string({ maxLength: 64 }), message: fc.string({ maxLength: 200 }), blame: fc.option(fc.string({ maxLength: 60 }), { nil: undefined }) }, { requiredKeys: ['type', 'session', 'code', 'message'] }),
  route.chain(r => fc.record({ type: fc.constant('reroute' as const), session: fc.constant(session), hop: fc.nat(r.length - 1), route: fc.constant(r), position: u32, step: u32, replayTo: fc.option(fc.nat(r.length - 1), { nil: undefined }) }, { requiredKeys: ['type', 'session', 'hop', 'route', 'position', 'step'] })),
  fc.record({ type: fc.constant('rerouted' as const), session: fc.constant(session), hop: fc.nat(255) }),
  fc.tuple(fc.record({ type: fc.constant('prepare' as const), session: fc.constant(session), model: fc.string({ maxLength: 40 }) }), span).map(([m, s]) => ({ ...m, ...s })),
  fc.tuple(fc.record({ type: fc.constant('prepared' as const), session: fc.constant(session), backend: fc.string({ maxLength: 20 }), activations: fc.constantFrom('F32', 'F16') }), span).map(([m, s]) => ({ ...m, ...s })),
  fc.record({ type: fc.constant('digest' as const), session: fc.constant(session), position: u32 }),
  fc.record({ type: fc.constant('digested' as const), session: fc.constant(session), position: u32, digest: hex(64) })
))

const finite = fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 })
const rows = (n: number, cols: number): fc.Arbitrary<Float32Array> => fc.array(finite, { minLength: n * cols, maxLength: n * cols }).map(xs => Float32Array.from(xs))
/** Every component message type, valid. */
export const validComponent: fc.Arbitrary<ComponentMessage> = hex(32).chain(id => fc.oneof(
  fc.tuple(route, peerRef, fc.string({ maxLength: 40 }), fc.string({ maxLength: 20 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 })).chain(([r, head, model, component, n, cols]) => fc.oneof(
    fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: n, maxLength: n }).map(t => ({ type: 'pass' as const, id, model, component, route: r, hop: 0, head, input: 'tokens' as const, n, data: Int32Array.from(t) })),
    fc.tuple(fc.constantFrom('pixels' as const, 'hidden' as const), rows(n, cols), fc.nat(r.length - 1)).map(([input, data, hop]) => ({ type: 'pass' as const, id, model, component, route: r, hop, head, input, n, data })))),
  fc.tuple(fc.constantFrom('embedding' as const, 'hidden' as const), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 })).chain(([kind, n, cols]) => rows(n, cols).map(data => ({ type: 'result' as const, id, kind, n, data }))),
  fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 })).chain(([n, cols]) => rows(n, cols).map(data => ({ type: 'memory' as const, id, n, data }))),
  fc.constant({ type: 'memory-ok' as const, id }),
  fc.record({ type: fc.constant('error' as const), id: fc.constant(id), code: fc.string({ maxLength: 64 }), message: fc.string({ maxLength: 200 }), blame: fc.option(fc.string({ maxLength: 60 }), { nil: undefined }) }, { requiredKeys: ['type', 'id', 'code', 'message'] })
))
/** A component message's header as JSON reads it back, and its payload's values. */
const componentView = (m: ComponentMessage): unknown => ({ ...json({ ...m, data: undefined }) as object, data: 'data' in m ? Array.from(m.data) : undefined })

/** A message as its JSON reads back (-0 is 0, undefined fields are gone). */
const json = (m: unknown): unknown => JSON.parse(JSON.stringify(m))

function withControlHeader (json: Uint8Array): Uint8Array {
  return new Uint8Array([0x53, 0x43, 1, ...json])
}

/** Activation frames and control messages: what every stage reads from its streams. */
export function protocolTargets (): Target[] {
  const t = (name: string, runs: number, property: (tally: Tally) => Target['property']): Target => {
    const tally = new Tally()
    return { name, runs, tally, property: property(tally) }
  }
  return [
    t('frame/bytes', 3000, tally => () => fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 128 }),
        // a valid magic and version, so the rest of the header is reached
        fc.uint8Array({ minLength: 32, maxLength: 160 }).map(b => { b.set([0x53, 0x4d, 2], 0); return b })
      ),
      bytes => { expectTyped(tally, [InvalidFrameError], () => decodeFrame(bytes), frameChecks) })),
    t('frame/mutated', 3000, tally => () => fc.property(mutatedBytes(validFrame.map(encodeFrame), FRAME_FIELDS), bytes => {
      expectTyped(tally, [InvalidFrameError], () => decodeFrame(bytes), f => {
        // whatever decodes re-encodes to the same bytes: no field is silently dropped or reinterpreted
        expect(encodeFrame(f)).toEqual(bytes)
        frameChecks(f)
      })
    })),
    t('frame/round-trip', 1000, tally => () => fc.property(validFrame, f => {
      const back = expectTyped(tally, [], () => decodeFrame(encodeFrame(f)))
      expect(back).toEqual({ ...f, session: f.session, payload: f.payload })
      // activations with NaN/∞ are refused with NON_FINITE, never passed on
      if (f.kind === 'activations' && f.shape.length === 2 && f.dtype === 'F32') {
        const floats = new Float32Array(f.payload.slice().buffer)
        const finite = floats.every(Number.isFinite)
        try { frameActivations(back!, f.shape[1]); expect(finite).toBe(true) } catch (err) { expect((err as InvalidFrameError).code).toBe('NON_FINITE'); expect(finite).toBe(false) }
      }
    })),
    t('control/bytes', 3000, tally => () => fc.property(
      fc.oneof(arbitraryText(), arbitraryText().map(withControlHeader)),
      bytes => { expectTyped(tally, [InvalidControlMessageError], () => decodeControl(bytes), m => { expect(json(decodeControl(encodeControl(m)))).toEqual(json(m)) }) })),
    t('control/mutated', 3000, tally => () => fc.property(
      fc.oneof(
        { weight: 4, arbitrary: mutatedJson(validControl, ['type', 'session', 'route', 'hop', 'layers', 'units', 'sampling', 'mirror', 'replayTo']).map(withControlHeader) },
        { weight: 1, arbitrary: mutatedBytes(validControl.map(encodeControl), [2]) }
      ),
      bytes => { expectTyped(tally, [InvalidControlMessageError], () => decodeControl(bytes), m => { expect(json(decodeControl(encodeControl(m)))).toEqual(json(m)) }) })),
    t('component/bytes', 3000, tally => () => fc.property(
      fc.oneof(fc.uint8Array({ maxLength: 256 }), arbitraryText().map(b => new Uint8Array([0x53, 0x50, 1, 0, b.byteLength & 0xff, (b.byteLength >> 8) & 0xff, 0, 0, ...b]))),
      bytes => { expectTyped(tally, [InvalidComponentMessageError], () => decodeComponent(bytes), m => { expect(componentView(decodeComponent(encodeComponent(m)))).toEqual(componentView(m)) }) })),
    t('component/mutated', 3000, tally => () => fc.property(mutatedBytes(validComponent.map(encodeComponent), [2, 3, 4, 5, 6, 7]), bytes => {
      expectTyped(tally, [InvalidComponentMessageError], () => decodeComponent(bytes), m => { expect(componentView(decodeComponent(encodeComponent(m)))).toEqual(componentView(m)) })
    })),
    t('component/round-trip', 1000, tally => () => fc.property(validComponent, m => {
      expect(componentView(expectTyped(tally, [], () => decodeComponent(encodeComponent(m)))!)).toEqual(componentView(m))
    })),
    t('control/round-trip', 1000, tally => () => fc.property(validControl, m => {
      const back = expectTyped(tally, [], () => decodeControl(encodeControl(m)))
      expect(json(back)).toEqual(json(m))
    }))
  ]
}
