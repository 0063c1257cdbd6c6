// The list view's rows: what `GET /api/projects/{id}/tasks` gives (one row per journal key of a
// run: components, loop trips, parameter-study instances and what ran inside them), put in a
// tree (trips and instances under their loop or study, what ran in a trip under the trip),
// overlaid with the live states of the events WebSocket, filtered and folded.
//
// Everything here is linear in the rows at most, and what runs once per change is linear in the
// rows shown: a study of 10,000 instances stays responsive.

import type { LiveStates } from './live'

export interface TaskRow {
  key: string // the journal key: a component's path, or a trip's (`loop_0/task`)
  parent: string // the key of the row this one is shown under ("" for the top)
  id: string | null // the component's ID when the key maps to one
  name: string
  type: string
  trip: string | null // a trip's index or an instance's parameters (`0`, `K_1`)
  state: string
  attempt: number
  host: string
  job_id: string | null // a pid, or the scheduler's job id
  returncode: number | null
  started: number | null // epoch seconds
  ended: number | null
  message: string | null
}

export interface TaskList {
  run: { id: number; state: string; started: number; ended: number | null } | null
  cleaned: boolean
  rows: TaskRow[]
}

/** A row in the tree: its depth, where its subtree ends in the list, and the text the filter
 * looks in (all but the state, which changes live). */
export interface Entry {
  row: TaskRow
  depth: number
  at: number // its index in the tree's entries
  end: number // the index after the last row below it (at + 1: none below)
  text: string
}

export interface Tree {
  entries: Entry[] // every row, each before the rows below it
  index: Map<string, number> // key → position in entries
}

const digit = (c: number) => c >= 48 && c <= 57

/** The natural order of keys: `loop_2` before `loop_10`, `K_1_L_9` before `K_1_L_10` (numbers
 * compared as numbers, everything else character by character; Intl.Collator is ten times
 * slower on a study's thousands of instances). */
export function natural(a: string, b: string): number {
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    const ca = a.charCodeAt(i)
    const cb = b.charCodeAt(j)
    if (digit(ca) && digit(cb)) {
      let ie = i
      while (ie < a.length && digit(a.charCodeAt(ie))) ie++
      let je = j
      while (je < b.length && digit(b.charCodeAt(je))) je++
      let i0 = i
      while (i0 < ie - 1 && a.charCodeAt(i0) === 48) i0++ // leading zeros
      let j0 = j
      while (j0 < je - 1 && b.charCodeAt(j0) === 48) j0++
      if (ie - i0 !== je - j0) return ie - i0 - (je - j0)
      for (let k = 0; k < ie - i0; k++) {
        const d = a.charCodeAt(i0 + k) - b.charCodeAt(j0 + k)
        if (d) return d
      }
      i = ie
      j = je
    } else {
      if (ca !== cb) return ca - cb
      i++
      j++
    }
  }
  return a.length - i - (b.length - j)
}

/** The rows in tree order: each row before the rows shown under it, siblings in the natural
 * order of their keys. A row whose parent is not among the rows goes to the top. */
export function buildTree(rows: TaskRow[]): Tree {
  const keys = new Set(rows.map((r) => r.key))
  const kids = new Map<string, TaskRow[]>()
  for (const r of rows) {
    const p = r.parent && keys.has(r.parent) && r.parent !== r.key ? r.parent : ''
    let list = kids.get(p)
    if (!list) kids.set(p, (list = []))
    list.push(r)
  }
  for (const list of kids.values()) list.sort((a, b) => natural(a.key, b.key))
  const entries: Entry[] = []
  const index = new Map<string, number>()
  // depth first without recursion (deep nesting, many rows)
  const stack: { rows: TaskRow[]; at: number; entry: Entry | null }[] = [{ rows: kids.get('') ?? [], at: 0, entry: null }]
  while (stack.length) {
    const top = stack[stack.length - 1]
    if (top.at >= top.rows.length) {
      if (top.entry) top.entry.end = entries.length
      stack.pop()
      continue
    }
    const row = top.rows[top.at++]
    if (index.has(row.key)) continue // a key twice (cannot come from one journal): once
    const entry: Entry = {
      row,
      depth: stack.length - 1,
      at: entries.length,
      end: entries.length + 1,
      text: [row.name, row.key, row.type, row.host, row.job_id ?? '', row.trip ?? ''].join('\n').toLowerCase(),
    }
    index.set(row.key, entries.length)
    entries.push(entry)
    const below = kids.get(row.key)
    if (below?.length) stack.push({ rows: below, at: 0, entry })
  }
  return { entries, index }
}

/** What a row shows: its state, start and end, the live event's when that came after the rows
 * were read (`since`: the number of the last change before that read). */
export interface Shown {
  state: string
  started: number | null
  ended: number | null
}

const OVER = new Set(['finished', 'failed', 'stopped', 'unknown', 'skipped'])
const NOT_YET = new Set(['not-started', 'queued', 'waiting'])

export function shown(row: TaskRow, live: LiveStates, since: number): Shown {
  const e = live.states[row.key]
  if (!e || (live.seqOf[row.key] ?? -1) <= since) return { state: row.state, started: row.started, ended: row.ended }
  if (NOT_YET.has(e.state)) return { state: e.state, started: null, ended: null }
  if (OVER.has(e.state)) return { state: e.state, started: row.started, ended: e.time }
  // running, or staging files: since the rows' start, or since this event
  return { state: e.state, started: row.ended === null && row.started !== null ? row.started : e.time, ended: null }
}

/** The rows to show: with a filter, every row whose name, key, type, state, host or job id
 * holds it (folding ignored); without, the tree with the folded rows' subtrees left out. At
 * most `limit` rows; `more` says whether there are others. */
export function visible(
  tree: Tree,
  folded: ReadonlySet<string>,
  filter: string,
  stateOf: (row: TaskRow) => string,
  limit = Infinity,
): { entries: Entry[]; more: boolean; matched: number } {
  const out: Entry[] = []
  const f = filter.trim().toLowerCase()
  const all = tree.entries
  if (f) {
    let matched = 0
    for (const e of all) {
      if (e.text.includes(f) || stateOf(e.row).toLowerCase().includes(f)) {
        matched++
        if (out.length < limit) out.push(e)
      }
    }
    return { entries: out, more: matched > out.length, matched }
  }
  let i = 0
  while (i < all.length) {
    const e = all[i]
    if (out.length >= limit) return { entries: out, more: true, matched: -1 }
    out.push(e)
    i = folded.has(e.row.key) ? e.end : i + 1
  }
  return { entries: out, more: false, matched: out.length }
}

/** Whether the live states name a key the rows do not have (a trip or instance that began
 * after they were read). `from`: how many of the live keys were looked at before (keys are
 * added at the end, so only the new ones are looked at); returns the count to pass next time. */
export function unseen(live: LiveStates, index: Map<string, number>, from = 0): { found: boolean; checked: number } {
  const keys = Object.keys(live.states)
  for (let i = Math.min(from, keys.length); i < keys.length; i++) {
    if (keys[i] && !index.has(keys[i])) return { found: true, checked: i }
  }
  return { found: false, checked: keys.length }
}

/** Calls `load` again at most once per `interval` ms (`soon`), or as soon as the one under way
 * is done (`now`); never two at once. */
export class Refresher {
  private last = -Infinity
  private timer: ReturnType<typeof setTimeout> | undefined
  private busy = false
  private again: 'soon' | 'now' | null = null
  private closed = false

  constructor(
    private readonly load: () => Promise<void>,
    readonly interval = 2000,
    private readonly now_: () => number = () => Date.now(),
  ) {}

  /** Load again, but not sooner than `interval` after the last load began. */
  soon(): void {
    if (this.closed || this.timer !== undefined) return
    if (this.busy) {
      this.again ??= 'soon'
      return
    }
    const wait = Math.max(0, this.last + this.interval - this.now_())
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.go()
    }, wait)
  }

  /** Load again at once (after the load under way, if one is). */
  now(): void {
    if (this.closed) return
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.busy) {
      this.again = 'now'
      return
    }
    void this.go()
  }

  close(): void {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private async go(): Promise<void> {
    this.busy = true
    this.last = this.now_()
    try {
      await this.load()
    } finally {
      this.busy = false
      const again = this.again
      this.again = null
      if (again === 'now') this.now()
      else if (again === 'soon') this.soon()
    }
  }
}

/** A time as this browser's local time: the time alone when it is today, else date and time. */
export function localTime(t: number | null, today: Date = new Date()): string {
  if (t === null) return ''
  const d = new Date(t * 1000)
  return d.toDateString() === today.toDateString() ? d.toLocaleTimeString() : d.toLocaleString()
}

/** How long from `started` to `ended`: `0.4 s`, `12 s`, `3 min 05 s`, `2 h 04 min`. */
export function duration(started: number | null, ended: number | null): string {
  if (started === null || ended === null) return ''
  const s = Math.max(0, ended - started)
  if (s < 10) return `${s.toFixed(1)} s`
  if (s < 60) return `${Math.floor(s)} s`
  const whole = Math.floor(s)
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, '0')} s`
  return `${Math.floor(whole / 3600)} h ${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')} min`
}
