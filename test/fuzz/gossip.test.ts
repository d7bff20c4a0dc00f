import { fuzzSuite } from './fuzz-suite.ts'
import { gossipTargets } from './targets/gossip.ts'

/**
 * Election, membership and state gossip never crash a peer: a valid message or
 * InvalidMessageError (counted under its reason); tab metric summaries: a valid summary or
 * InvalidSummaryError.
 */
fuzzSuite('fuzz: gossip messages', gossipTargets)
