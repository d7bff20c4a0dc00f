import { LOG_WINDOW, SNAPSHOT_EVERY } from './constants.ts'
import type { LogEntry, MeshState, Transaction } from './types.ts'

/** `stale`: older than the window, cannot be checked (ignored). */
export type ApplyResult = 'applied' | 'duplicate' | 'stale' | 'conflict' | 'gap'

export function emptyState (): MeshState {
  return { version: 0, term: 0, config: [], coordinator: null, data: {} }
}

/** (term, version) order of state heads: a newer term wins, then a longer log (Raft's up-to-date rule). */
export function compareHeads (a: { term: number, version: number }, b: { term: number, version: number }): number {
  return a.term !== b.term ? a.term - b.term : a.version - b.version
}

function applyTx (state: MeshState, entry: LogEntry): void {
  const tx: Transaction = entry.tx
  switch (tx.op) {
    case 'init': state.config = [...new Set(tx.members)]; break
    case 'term': state.coordinator = { term: entry.term, peerId: tx.coordinator }; break
    case 'add': if (!state.config.includes(tx.peerId)) state.config = [...state.config, tx.peerId]; break
    case 'remove': state.config = state.config.filter(p => p !== tx.peerId); break
    case 'set': state.data[tx.key] = tx.value; break
    case 'delete': delete state.data[tx.key]; break
  }
  state.version = entry.version
  state.term = entry.term
}

/**
 * The replicated state machine: a versioned log of transactions over a state, with a
 * checkpoint every SNAPSHOT_EVERY versions and a window of recent entries to tell a
 * duplicate from a conflicting entry of another term.
 */
export class StateLog {
  private state: MeshState = emptyState()
  private entries: LogEntry[] = []
  private checkpoint: MeshState = emptyState()

  get version (): number { return this.state.version }
  /** Term of the newest entry. */
  get term (): number { return this.state.term }
  get config (): readonly string[] { return this.state.config }

  /** The current state; read only (copy it to keep it). */
  current (): Readonly<MeshState> { return this.state }

  /** A deep copy of the current state, for a snapshot message. */
  snapshot (): MeshState { return structuredClone(this.state) }

  /** The newest checkpoint (a deep copy). */
  lastCheckpoint (): MeshState { return structuredClone(this.checkpoint) }

  /** Term of the entry at `version`, when it is still in the window (or is the head). */
  termAt (version: number): number | undefined {
    if (version === this.state.version) return this.state.term
    if (version === 0) return 0
    const first = this.entries[0]?.version
    if (first === undefined || version < first || version > this.state.version) return undefined
    return this.entries[version - first].term
  }

  /** Entries after `version`, or undefined when they left the window. */
  entriesAfter (version: number): LogEntry[] | undefined {
    if (version >= this.state.version) return []
    const first = this.entries[0]?.version
    if (first === undefined || version + 1 < first) return undefined
    return this.entries.slice(version + 1 - first)
  }

  apply (entry: LogEntry): ApplyResult {
    if (entry.version <= this.state.version) {
      const known = this.termAt(entry.version)
      if (known === undefined) return 'stale'
      return known === entry.term ? 'duplicate' : 'conflict'
    }
    if (entry.version !== this.state.version + 1) return 'gap'
    if (entry.term < this.state.term) return 'conflict'
    applyTx(this.state, entry)
    this.entries.push(entry)
    if (this.entries.length > LOG_WINDOW) this.entries.splice(0, this.entries.length - LOG_WINDOW)
    if (entry.version % SNAPSHOT_EVERY === 0) this.checkpoint = structuredClone(this.state)
    return 'applied'
  }

  /** Replace everything with a snapshot. */
  restore (state: MeshState): void {
    this.state = structuredClone(state)
    this.entries = []
    this.checkpoint = structuredClone(state)
  }
}
