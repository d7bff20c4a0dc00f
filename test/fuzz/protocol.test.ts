import { fuzzSuite } from './fuzz-suite.ts'
import { protocolTargets } from './targets/protocol.ts'

/** Activation frames and control messages never crash a stage: a value or InvalidFrameError / InvalidControlMessageError. */
fuzzSuite('fuzz: frames and control messages', protocolTargets)
