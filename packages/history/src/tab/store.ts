// A browser tab's own performance history in IndexedDB (the plain API): one record per
// sample, at most `maxRecords` per origin (every tab of a browser profile writes the same
// database; the oldest records go first). A reload keeps them: a reloaded tab comes back as
// the same peer id (browser-peer identity.ts) and finds its records by it.
import { TabHistoryError } from '../errors.ts'
import type { TabMetrics } from './metrics.ts'

/** The database every tab of an origin writes. */
export const TAB_HISTORY_DB = 'shardmesh-history'
/** Records kept per origin; the oldest are deleted as new ones come (~300 bytes each). */
export const TAB_MAX_RECORDS = 2000
/** Object store of the records (key `id`, auto-incremented; index `peer` on [peer, at]). */
export const RECORDS = 'records'

/** One sample of a tab's metrics. */
export interface TabRecord {
  /** Auto-incremented key (absent before the record is stored). */
  id?: number
  /** When it was sampled (ms since the epoch). */
  at: number
  /** The tab's libp2p peer id. */
  peer: string
  browser: string
  version: string
  backend: string
  adapter: string | null
  metrics: TabMetrics
}

/**
 * The schema as IndexedDB versions: opening at a higher version runs each missing step in
 * the upgrade transaction (IndexedDB's own migration; a failed step aborts the whole upgrade
 * and the database stays at its old version). Never edit a released step: add the next one.
 */
export const TAB_MIGRATIONS: Array<{ version: number, description: string, upgrade: (db: IDBDatabase, tx: IDBTransaction) => void }> = [
  {
    version: 1,
    description: 'records: one sample of a tab\'s metrics each, by peer and time',
    upgrade: db => {
      const store = db.createObjectStore(RECORDS, { keyPath: 'id', autoIncrement: true })
      store.createIndex('peer', ['peer', 'at'])
    }
  }
]

export const TAB_HISTORY_VERSION = TAB_MIGRATIONS[TAB_MIGRATIONS.length - 1].version

export interface TabHistoryInit {
  /** @default TAB_HISTORY_DB */
  name?: string
  /** @default TAB_MAX_RECORDS */
  maxRecords?: number
  /** @default globalThis.indexedDB */
  indexedDB?: IDBFactory
}

function done<T> (req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => { resolve(req.result) }
    req.onerror = () => { reject(req.error ?? new TabHistoryError('IndexedDB request failed')) }
  })
}

function committed (tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => { resolve() }
    tx.onerror = () => { reject(tx.error ?? new TabHistoryError('IndexedDB transaction failed')) }
    tx.onabort = () => { reject(tx.error ?? new TabHistoryError('IndexedDB transaction aborted')) }
  })
}

/** A tab's history: add samples, read them back (oldest first). */
export class TabHistory {
  readonly name: string
  readonly maxRecords: number
  private db: IDBDatabase | undefined

  constructor (db: IDBDatabase, name: string, maxRecords: number) {
    this.db = db
    this.name = name
    this.maxRecords = maxRecords
    // a newer page in another tab wants to upgrade: let it (this tab stops recording)
    db.onversionchange = () => { this.close() }
  }

  private database (): IDBDatabase {
    if (this.db === undefined) throw new TabHistoryError(`the tab history ${this.name} is closed`)
    return this.db
  }

  /** Store a record (the oldest ones beyond `maxRecords` are deleted in the same transaction); resolves with its id once committed. */
  async add (record: Omit<TabRecord, 'id'>): Promise<number> {
    const tx = this.database().transaction(RECORDS, 'readwrite')
    const end = committed(tx)
    const store = tx.objectStore(RECORDS)
    const added = store.add({ ...record })
    let count: number
    try {
      count = await done(store.count())
    } catch (err) {
      await end.catch(() => {})
      throw err
    }
    let excess = count - this.maxRecords
    if (excess > 0) {
      const cursor = store.openCursor()
      cursor.onsuccess = () => {
        const c = cursor.result
        if (c === null || excess <= 0) return
        c.delete()
        excess--
        c.continue()
      }
    }
    await end
    return added.result as number
  }

  /** Records, oldest first: of one peer when given, at most the newest `limit`. */
  async list (options: { peer?: string, limit?: number } = {}): Promise<TabRecord[]> {
    const tx = this.database().transaction(RECORDS, 'readonly')
    const store = tx.objectStore(RECORDS)
    const req = options.peer === undefined
      ? store.getAll()
      : store.index('peer').getAll(IDBKeyRange.bound([options.peer, -Infinity], [options.peer, Infinity]))
    const all = (await done(req)) as TabRecord[]
    if (options.peer !== undefined) all.sort((a, b) => a.id! - b.id!)
    return options.limit === undefined ? all : all.slice(Math.max(0, all.length - options.limit))
  }

  /** Records of every tab of this origin. */
  async count (): Promise<number> {
    return await done(this.database().transaction(RECORDS, 'readonly').objectStore(RECORDS).count())
  }

  close (): void {
    this.db?.close()
    this.db = undefined
  }
}

/**
 * Open (creating or upgrading) a tab's history database. One written by a newer page (a
 * version above TAB_HISTORY_VERSION) is refused with `TabHistoryError`, as is a browser
 * without IndexedDB.
 */
export async function openTabHistory (init: TabHistoryInit = {}): Promise<TabHistory> {
  const name = init.name ?? TAB_HISTORY_DB
  const maxRecords = init.maxRecords ?? TAB_MAX_RECORDS
  if (!(Number.isSafeInteger(maxRecords) && maxRecords > 0)) throw new TabHistoryError(`maxRecords must be a whole number > 0, got ${maxRecords}`)
  const factory = init.indexedDB ?? globalThis.indexedDB
  if (factory === undefined) throw new TabHistoryError('this browser has no IndexedDB')
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const req = factory.open(name, TAB_HISTORY_VERSION)
    req.onupgradeneeded = evt => {
      const tx = req.transaction!
      for (const m of TAB_MIGRATIONS) if (m.version > evt.oldVersion && m.version <= TAB_HISTORY_VERSION) m.upgrade(req.result, tx)
    }
    req.onsuccess = () => { resolve(req.result) }
    req.onerror = () => {
      const err = req.error
      reject(err?.name === 'VersionError'
        ? new TabHistoryError(`the tab history ${name} is at a version above ${TAB_HISTORY_VERSION} (written by a newer page?)`, { cause: err })
        : new TabHistoryError(`cannot open the tab history ${name}: ${err?.message ?? 'unknown error'}`, { cause: err }))
    }
    req.onblocked = () => { /* another tab holds an older version open; its onversionchange closes it, then this open goes on */ }
  })
  return new TabHistory(db, name, maxRecords)
}
