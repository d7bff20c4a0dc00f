import { fuzzSuite } from './fuzz-suite.ts'
import { checkpointTargets } from './targets/checkpoints.ts'

/** GGUF, safetensors, config.json and llama2.c files: a checkpoint or one of the model package's typed errors, never a crash or a huge allocation. */
fuzzSuite('fuzz: checkpoint files', checkpointTargets)
