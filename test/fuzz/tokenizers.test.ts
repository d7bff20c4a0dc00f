import { fuzzSuite } from './fuzz-suite.ts'
import { tokenizerTargets } from './targets/tokenizers.ts'

/** Tokenizer files and model manifests: a usable tokenizer / a manifest, or a typed error (CorruptCheckpointError…, InvalidManifestError). */
fuzzSuite('fuzz: tokenizer files and manifests', tokenizerTargets)
