import { fuzzSuite } from './fuzz-suite.ts'
import { pipelineTargets } from './targets/pipeline.ts'

/** Audit messages and distrust reports never crash a peer: a value or InvalidAuditMessageError / InvalidDistrustReportError. */
fuzzSuite('fuzz: audit messages and distrust reports', pipelineTargets)
