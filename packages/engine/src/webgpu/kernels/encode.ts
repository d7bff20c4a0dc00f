import type { Step } from '../params.ts'

/** Records one kernel's dispatches into a compute pass for a forward step. */
export type Encode = (pass: GPUComputePassEncoder, step: Step) => void
