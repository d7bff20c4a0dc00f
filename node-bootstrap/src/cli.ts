#!/usr/bin/env node
import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import { CliError, formatError } from './errors.ts'
import { setLogLevel } from './log.ts'

type Options = NonNullable<ParseArgsConfig['options']>

interface Command {
  summary: string
  usage: string
  options: Options
  help: Record<string, string>
  /** The option a positional argument fills (`shardmesh import MODEL`). */
  positional?: string
  run: (values: Record<string, string | boolean | undefined>) => Promise<void>
}

const common: Options = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  'log-level': { type: 'string' }
}

const commonHelp: Record<string, string> = {
  json: 'print one machine-readable JSON object instead of text',
  'log-level': 'error | warn | info | debug (default info)',
  help: 'show this help'
}

const commands: Record<string, Command> = {
  generate: {
    summary: 'run one generation',
    usage: 'shardmesh generate --local|--local-peers N --model PATH|URL [--tokenizer PATH] --prompt TEXT [options]',
    options: {
      local: { type: 'boolean' },
      'local-peers': { type: 'string' },
      strategy: { type: 'string', default: 'layer' },
      'ft-level': { type: 'string' },
      recovery: { type: 'string' },
      store: { type: 'string' },
      'mesh-id': { type: 'string' },
      model: { type: 'string' },
      tokenizer: { type: 'string' },
      prompt: { type: 'string', default: '' },
      'max-tokens': { type: 'string', default: '256' },
      temperature: { type: 'string', default: '0' },
      'top-k': { type: 'string', default: '0' },
      'top-p': { type: 'string', default: '1' },
      seed: { type: 'string', default: '0' },
      backend: { type: 'string', default: 'cpu' },
      stages: { type: 'string', default: '1' },
      threads: { type: 'string' }
    },
    help: {
      local: 'run every layer in this process',
      'local-peers': 'instead: start a bootstrap here and N peer processes, run the generation through the mesh, print the plan too',
      strategy: 'with --local-peers: layer | balanced | hardware_aware | browser_optimized | attention_feedforward | hybrid',
      'ft-level': 'with --local-peers: none | low | medium | high | critical (default medium)',
      recovery: 'with --local-peers: reconnect | restart | failover | parallel | progressive | coordinated (default progressive)',
      store: 'with --local-peers: block store to import the model into (default a temporary one)',
      'mesh-id': 'with --local-peers: mesh name (default "default")',
      model: 'GGUF file, llama2.c .bin, Hugging Face folder (config.json + *.safetensors), or an http(s) URL of one of the files (downloaded once into the cache)',
      tokenizer: 'tokenizer file when the model has none inside: llama2.c tok*.bin, tokenizer.json, or a GGUF',
      prompt: 'text to continue (default empty: start from BOS)',
      'max-tokens': 'most tokens to generate (default 256)',
      temperature: '0 = greedy (default 0)',
      'top-k': 'sample among the k most likely tokens; 0 = off',
      'top-p': 'nucleus sampling threshold; 1 = off',
      seed: 'sampling seed: the draw at each position depends only on (seed, position)',
      backend: 'cpu | webgpu (with --local-peers: the peers\' backend; no GPU here? set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json for SwiftShader)',
      stages: 'split the layers into this many stages chained in-process (same tokens as 1)',
      threads: 'cpu threads per matmul (default: 2 where there are 2+ cores, else 1; same tokens for any count)'
    },
    run: async values => { await (await import('./commands/generate.ts')).generateCommand(values) }
  },
  start: {
    summary: 'run a bootstrap node: WebSockets/TCP listener, circuit relay, gossipsub, HTTP API',
    usage: 'shardmesh start [--model PATH|URL|CID [--local-peers N [--local-backends K,…]] [--strategy S] [--ft-level L] [--recovery S]] [--backend cpu|webgpu] [--port 8080] [--listen MULTIADDRS] [--json]',
    options: {
      model: { type: 'string' },
      tokenizer: { type: 'string' },
      store: { type: 'string' },
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      'api-key': { type: 'string' },
      listen: { type: 'string' },
      memory: { type: 'string' },
      'mesh-id': { type: 'string' },
      private: { type: 'boolean' },
      'local-peers': { type: 'string' },
      'open-peers': { type: 'string' },
      'min-peers': { type: 'string' },
      backend: { type: 'string', default: 'cpu' },
      'local-backends': { type: 'string' },
      strategy: { type: 'string', default: 'layer' },
      'ft-level': { type: 'string' },
      recovery: { type: 'string' },
      db: { type: 'string' },
      remeasure: { type: 'string' },
      demo: { type: 'string' },
      'demo-tokens': { type: 'string' }
    },
    help: {
      model: 'a model file/folder/URL to import into IPFS, or the manifest CID of one imported before; its blocks are provided to peers',
      demo: 'with --model: once the mesh serves, stream one completion of this prompt through it (temperature 0) and print it, then keep serving',
      'demo-tokens': 'tokens the --demo completion generates (default 64)',
      tokenizer: 'tokenizer file for a model without one inside (llama2.c tok*.bin, tokenizer.json, GGUF)',
      store: 'block store directory (default $SHARDMESH_STORE or ~/.cache/shardmesh/blocks, as `import`)',
      port: 'HTTP port of the API (GET /api/mesh); 0 picks a free one',
      host: 'HTTP address to bind',
      'api-key': 'API key(s), comma-separated, that the HTTP API requires as "Authorization: Bearer KEY" (also from $SHARDMESH_API_KEYS); the peer page /, /peer.json and /assets/ stay open. Default: no key',
      listen: 'comma-separated libp2p multiaddrs (default /ip4/127.0.0.1/tcp/0/ws,/ip4/127.0.0.1/tcp/0)',
      memory: 'memory budget to announce, in MiB (default half of RAM)',
      'mesh-id': 'mesh name; peers of different meshes ignore each other (default "default")',
      private: 'private mesh of the operator key <store>/operator.key (created if missing; mesh id private-<its peer id>): only peers holding its tickets vote, stand, get stages and open sessions; admit with `shardmesh admit` (--local-peers are admitted)',
      'local-peers': 'also spawn this many `shardmesh peer` child processes serving --model (killed on exit; one that dies is respawned with its key from <store>/local-peers/, so with its peer id)',
      'open-peers': 'also open the peer page in this many headless Chromium tabs (browser peers on WebGPU; killed on exit)',
      'min-peers': 'compute peers to wait for (up to 30 s; 120 s with --local-peers) before the first plan (default --local-peers + --open-peers)',
      backend: 'cpu | webgpu: what this node\'s own stage (when it is the only peer) and the --local-peers compute on; webgpu stops with an error when there is no adapter (no GPU here? set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json for SwiftShader)',
      'local-backends': 'one backend per local peer instead of --backend for all, e.g. webgpu,cpu,cpu (as many as --local-peers)',
      strategy: 'how the plan splits the layers: layer | balanced | hardware_aware | browser_optimized | attention_feedforward (stages may split blocks between attention and feed-forward) | hybrid (picks whole layers or split blocks, and says why in each stage\'s reason)',
      'ft-level': 'fault tolerance of sessions a head drives: none | low | medium | high | critical (default medium)',
      recovery: 'how a lost stage is replaced: reconnect | restart | failover | parallel | progressive | coordinated (default progressive)',
      db: 'performance history file (DuckDB; default <store>/history/bootstrap.duckdb; `none`: record nothing)',
      remeasure: 'with --local-peers: the peers\' --remeasure (seconds between re-runs of their decode benchmark while idle; default 30, 0 = at join only)'
    },
    run: async values => { await (await import('./commands/start.ts')).startCommand(values) }
  },
  peer: {
    summary: 'run a Node compute peer that joins a mesh',
    usage: 'shardmesh peer --bootstrap MULTIADDR [--model CID] [--port N] [--backend cpu|webgpu] [--listen MULTIADDRS] [--json]',
    options: {
      bootstrap: { type: 'string' },
      model: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'api-key': { type: 'string' },
      strategy: { type: 'string', default: 'layer' },
      listen: { type: 'string' },
      memory: { type: 'string' },
      'mesh-id': { type: 'string' },
      ticket: { type: 'string' },
      'ft-level': { type: 'string' },
      recovery: { type: 'string' },
      key: { type: 'string' },
      'min-peers': { type: 'string' },
      backend: { type: 'string', default: 'cpu' },
      db: { type: 'string' },
      remeasure: { type: 'string' }
    },
    help: {
      bootstrap: 'multiaddr(s) of the bootstrap node, ending in /p2p/<peer id> (comma-separated)',
      model: 'manifest CID to serve (published as coordinator); default: the model in the mesh state',
      port: 'also serve HTTP here (GET /api/mesh and the OpenAI API through the mesh); 0 picks a free one',
      host: 'HTTP address to bind',
      'api-key': 'with --port: API key(s) the HTTP API requires, as start',
      strategy: 'planner strategy used if this peer becomes coordinator (as start)',
      listen: 'comma-separated libp2p multiaddrs (default /ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/tcp/0/ws)',
      memory: 'memory budget to announce, in MiB (default half of RAM)',
      'mesh-id': 'mesh name (default "default")',
      ticket: 'admission ticket of a private mesh (`shardmesh admit` prints it), or a file holding one; sets the mesh id. Use it with --key: a ticket names one peer id',
      'ft-level': 'fault tolerance of sessions this peer drives as a head (--port): none | low | medium | high | critical (default medium)',
      recovery: 'how a lost stage is replaced: reconnect | restart | failover | parallel | progressive | coordinated (default progressive)',
      key: 'file holding this peer\'s private key (created if missing): a restarted peer keeps its peer id',
      'min-peers': 'if this peer is the first coordinator: compute peers to wait for (up to 30 s) before the first plan (default 0)',
      backend: 'cpu | webgpu: what this peer\'s stages and its join benchmark compute on, announced with the adapter in its capabilities; webgpu stops with an error when there is no adapter (no GPU here? set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json for SwiftShader)',
      db: 'performance history file (DuckDB; default beside --key as <key>.duckdb, else ~/.cache/shardmesh/history/peer-<id>.duckdb; `none`: record nothing)',
      remeasure: 'seconds between re-runs of the decode benchmark while this peer is idle, announced so the mesh\'s history sees a peer slowed after it joined (default 30; 0 = at join only)'
    },
    run: async values => { await (await import('./commands/peer.ts')).peerCommand(values) }
  },
  chaos: {
    summary: 'kill peer processes at seeded random tokens during generations; report completion, exactness and stalls',
    usage: 'shardmesh chaos --model PATH|URL|CID [--peers 3] [--trials 10] [--seed S] [--ft-level L] [--recovery S] [--max-tokens 48] [--json]',
    options: {
      model: { type: 'string' },
      tokenizer: { type: 'string' },
      store: { type: 'string' },
      peers: { type: 'string', default: '3' },
      trials: { type: 'string', default: '10' },
      seed: { type: 'string' },
      'ft-level': { type: 'string' },
      recovery: { type: 'string' },
      strategy: { type: 'string', default: 'layer' },
      'max-tokens': { type: 'string', default: '48' },
      prompt: { type: 'string', default: 'Once upon a time' },
      temperature: { type: 'string', default: '0' },
      'top-k': { type: 'string', default: '0' },
      'top-p': { type: 'string', default: '1' },
      'sample-seed': { type: 'string', default: '0' },
      victims: { type: 'string' },
      failures: { type: 'string', default: 'kill' },
      'trial-timeout': { type: 'string', default: '30' },
      'mesh-id': { type: 'string' },
      memory: { type: 'string' }
    },
    help: {
      model: 'the model the peers serve (as start --model)',
      tokenizer: 'tokenizer file for a model without one inside',
      store: 'block store to import the model into; the peers\' keys go to <store>/local-peers (default a temporary one)',
      peers: 'peer processes to spawn (2–16); this process is the head and never the coordinator',
      trials: 'generations with one failure each',
      seed: 'seed of the victims and kill tokens (default random; printed, so a run can be repeated)',
      'ft-level': 'none | low | medium | high | critical (default medium)',
      recovery: 'reconnect | restart | failover | parallel | progressive | coordinated (default progressive)',
      strategy: 'planner strategy (as start)',
      'max-tokens': 'tokens per generation',
      prompt: 'prompt of every generation',
      temperature: '0 = greedy; above, sampled with --sample-seed (the same tokens every run)',
      'top-k': 'sample among the k most likely tokens; 0 = off',
      'top-p': 'nucleus sampling threshold; 1 = off',
      'sample-seed': 'sampling seed of the generations',
      victims: 'comma-separated kinds to pick from: first, middle, last (stage primaries), standby, coordinator (default: these five); two at once: consecutive (two adjacent primaries), coordinator+stage',
      failures: 'comma-separated: kill (SIGKILL), hang (SIGSTOP, connections stay open)',
      'trial-timeout': 'seconds a trial may take before it counts as failed',
      'mesh-id': 'mesh name (default chaos-<pid>-<seed>)',
      memory: 'memory budget this process announces, in MiB'
    },
    run: async values => { await (await import('./commands/chaos.ts')).chaosCommand(values) }
  },
  history: {
    summary: 'performance history: summary | peers | anomalies | recommend | export',
    usage: 'shardmesh history [summary|peers|anomalies|recommend|export] [--db PATH | --url URL] [--json]',
    positional: 'action',
    options: {
      action: { type: 'string' },
      db: { type: 'string' },
      store: { type: 'string' },
      url: { type: 'string' },
      format: { type: 'string', default: 'json' },
      out: { type: 'string', default: 'history-export' },
      tables: { type: 'string' }
    },
    help: {
      action: 'what to show (or give it as ACTION; default summary)',
      db: 'history file (default <store>/history/bootstrap.duckdb, as start); opened read-only — while a node holds it, read through that node\'s API',
      store: 'block store whose history/bootstrap.duckdb is the default --db',
      url: 'read GET /api/history/... of a running node instead of a file',
      format: 'export: json (one object per line) | csv | parquet',
      out: 'export: folder for one file per table',
      tables: 'export: comma-separated tables (default all, and the performance view)'
    },
    run: async values => { await (await import('./commands/history.ts')).historyCommand(values) }
  },
  admit: {
    summary: 'private meshes: issue an admission ticket for a peer (or revoke its tickets)',
    usage: 'shardmesh admit PEERID [--roles compute,head] [--expires 30d] [--url URL [--revoke] [--api-key KEY]] [--store DIR] [--json] | shardmesh admit --join --url URL [--roles compute] [--expires 24h]',
    positional: 'peer',
    options: {
      peer: { type: 'string' },
      roles: { type: 'string', default: 'compute,head' },
      expires: { type: 'string', default: '30d' },
      revoke: { type: 'boolean' },
      join: { type: 'boolean' },
      url: { type: 'string' },
      'api-key': { type: 'string' },
      store: { type: 'string' }
    },
    help: {
      peer: 'peer id to admit (or give it as PEERID)',
      roles: 'compute (may get a stage), head (may open sessions): one or both',
      expires: 'ticket lifetime: 90s, 30m, 12h, 7d',
      revoke: 'with --url: revoke the peer\'s tickets issued until now (it loses its stage at the next plan)',
      join: 'with --url, no PEERID: a join token, printed as the peer page URL with #join=TOKEN — a browser that opens it gets a ticket for its own peer id (roles: --roles, default here compute; lifetime: --expires, default here 24h)',
      url: 'HTTP URL of the running `start --private` node: it signs, and puts the ticket (or revocation) in the mesh state, so a running peer is admitted without a restart. Without it the ticket is signed here with <store>/operator.key and printed (for `peer --ticket`)',
      'api-key': 'API key of that node (also $SHARDMESH_API_KEYS)',
      store: 'the store whose operator.key signs (as start)'
    },
    run: async values => { await (await import('./commands/admit.ts')).admitCommand(values) }
  },
  import: {
    summary: 'import a model into IPFS (per-layer UnixFS files + manifest); prints the manifest CID',
    usage: 'shardmesh import MODEL [--tokenizer PATH] [--store DIR] [--json]',
    positional: 'model',
    options: {
      model: { type: 'string' },
      tokenizer: { type: 'string' },
      store: { type: 'string' }
    },
    help: {
      model: 'the model (or give it as MODEL): GGUF file, llama2.c .bin, Hugging Face folder, or an http(s) URL',
      tokenizer: 'tokenizer file when the model has none inside: llama2.c tok*.bin, tokenizer.json, or a GGUF',
      store: 'blockstore directory (default $SHARDMESH_STORE or ~/.cache/shardmesh/blocks)'
    },
    run: async values => { await (await import('./commands/import.ts')).importCommand(values) }
  }
}

function usage (): string {
  const lines = ['Usage: shardmesh <command> [options]', '', 'Commands:']
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${c.summary}`)
  lines.push('', 'Run `shardmesh <command> --help` for a command\'s options.')
  return lines.join('\n')
}

function commandHelp (name: string, c: Command): string {
  const lines = [c.usage, '', c.summary, '', 'Options:']
  const all = { ...c.help, ...commonHelp }
  for (const [flag, text] of Object.entries(all)) {
    const def = c.options[flag]?.default
    lines.push(`  --${flag.padEnd(14)} ${text}${def !== undefined && def !== '' ? ` [${String(def)}]` : ''}`)
  }
  return lines.join('\n') + `\n\n(${name})`
}

async function main (argv: string[]): Promise<void> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n')
    return
  }
  const command = commands[name]
  if (command === undefined) throw new CliError(`unknown command "${name}"\n\n${usage()}`)
  let values: Record<string, string | boolean | undefined>
  try {
    const parsed = parseArgs({ args: rest, options: { ...command.options, ...common }, strict: true, allowPositionals: command.positional !== undefined })
    values = parsed.values as Record<string, string | boolean | undefined>
    if (parsed.positionals.length > 1) throw new Error(`one ${command.positional ?? 'argument'} expected, got ${parsed.positionals.length}`)
    if (command.positional !== undefined && parsed.positionals.length === 1) {
      if (values[command.positional] !== undefined) throw new Error(`give the ${command.positional} once (positional or --${command.positional})`)
      values[command.positional] = parsed.positionals[0]
    }
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n\n${commandHelp(name, command)}`)
  }
  if (values.help === true) {
    process.stdout.write(commandHelp(name, command) + '\n')
    return
  }
  if (typeof values['log-level'] === 'string') setLogLevel(values['log-level'])
  await command.run(values)
}

main(process.argv.slice(2)).catch(err => {
  process.stderr.write(`shardmesh: ${formatError(err)}\n`)
  process.exitCode = err instanceof CliError ? 2 : 1
})
