// The live states of one project's components, from the server's WebSocket
// `/api/projects/{id}/events`: first a snapshot, then changes numbered 1, 2, 3 …
// The rules are the server's hub's: a change of another run than the current one starts the
// components' states afresh; a snapshot replaces everything.

import type { RunEvent } from './api'

export type EventMessage =
  | { type: 'snapshot'; seq: number; run: RunEvent | null; states: Record<string, RunEvent> }
  | { type: 'change'; seq: number; event: RunEvent }

/** What applying a message did: applied, ignored (seen already) or a gap (reconnect for a snapshot). */
export type Applied = 'applied' | 'seen' | 'gap'

export interface LiveStates {
  seq: number // the last change applied; -1 before the first snapshot
  current: number // the run the states are of
  run: RunEvent | null // the run's own last event (key "")
  states: Record<string, RunEvent> // by component key (its path in the project)
  // the number of the change that brought each state (and the run's): what is newer than the
  // project as last read overrides the state read from its files
  seqOf: Record<string, number>
  runSeq: number
}

export function emptyStates(): LiveStates {
  return { seq: -1, current: 0, run: null, states: {}, seqOf: {}, runSeq: -1 }
}

/** Final states of a run: its components' states are in the project's files by then. */
const OVER = new Set(['finished', 'failed', 'stopped', 'unknown'])

export function applyMessage(live: LiveStates, msg: EventMessage): Applied {
  if (msg.type === 'snapshot') {
    live.seq = msg.seq
    live.run = msg.run
    const states: Record<string, RunEvent> = {}
    let current = msg.run?.run ?? 0
    for (const [k, e] of Object.entries(msg.states)) {
      states[k] = e
      if (!msg.run) current = Math.max(current, e.run)
    }
    live.states = states
    live.current = current
    // a run still going: its states are newer than any file; a run over wrote them to the
    // project's files, which may have changed since (a clean): those are believed then
    const newer = msg.run !== null && !OVER.has(msg.run.state) ? msg.seq : -1
    live.seqOf = Object.fromEntries(Object.keys(states).map((k) => [k, newer]))
    live.runSeq = newer
    return 'applied'
  }
  if (live.seq < 0) return 'gap' // a change before any snapshot
  if (msg.seq <= live.seq) return 'seen'
  if (msg.seq !== live.seq + 1) return 'gap'
  const e = msg.event
  live.seq = msg.seq
  if (e.run !== live.current) {
    live.states = {}
    live.seqOf = {}
    live.run = null
    live.runSeq = -1
    live.current = e.run
  }
  if (e.kind === 'run' && !e.key) {
    live.run = e
    live.runSeq = msg.seq
  } else {
    live.states = { ...live.states, [e.key]: e }
    live.seqOf = { ...live.seqOf, [e.key]: msg.seq }
  }
  return 'applied'
}

/** Applies the messages in order, as `applyMessage` each, to `live` at once: its `states` and
 * `seqOf` are replaced once for all of them (not copied per change), so that a reactive `live`
 * changes once and a view of a thousand rows renders once. Stops at a gap. Returns what each
 * applied message was (the changes, or null for a snapshot) and whether a gap came. */
export function applyMessages(
  live: LiveStates,
  msgs: EventMessage[],
): { applied: (RunEvent | null)[]; gap: boolean } {
  const work: LiveStates = { ...live }
  let own = false // work.states and work.seqOf are the batch's own (copied, or made anew)
  const applied: (RunEvent | null)[] = []
  let gap = false
  for (const msg of msgs) {
    const e = msg.type === 'change' ? msg.event : null
    // a change of a component in the same run is written into the batch's own copies
    if (e && !(e.kind === 'run' && !e.key) && e.run === work.current && work.seq >= 0 && msg.seq === work.seq + 1) {
      if (!own) {
        work.states = { ...work.states }
        work.seqOf = { ...work.seqOf }
        own = true
      }
      work.seq = msg.seq
      work.states[e.key] = e
      work.seqOf[e.key] = msg.seq
      applied.push(e)
      continue
    }
    const got = applyMessage(work, msg)
    if (got === 'gap') {
      gap = true
      break
    }
    if (got === 'applied') applied.push(e)
    own = work.states !== live.states && work.seqOf !== live.seqOf
  }
  if (applied.length) Object.assign(live, work)
  return { applied, gap }
}

/** Calls `f` once the task that asked is over (a microtask): the messages of one frame of the
 * socket — the server puts in one frame all it had queued for this tab — are applied together.
 * (Waiting for an animation frame batched more, but a window that draws none, as a second
 * headless window may, then showed no change.) Returns the function that cancels it. */
function afterThisTask(f: () => void): () => void {
  let on = true
  queueMicrotask(() => {
    if (on) f()
  })
  return () => {
    on = false
  }
}

/** The state to show for a component: its live one when that came after the project was read
 * (`since`: the number of the last change before that read), else the one read. */
export function stateOf(live: LiveStates, path: string, saved: string, since = -1): string {
  const e = live.states[path]
  return e && (live.seqOf[path] ?? -1) > since ? e.state : saved
}

/** The run's state to show, by the same rule. */
export function runStateOf(live: LiveStates, saved: string, since = -1): string {
  return live.run && live.runSeq > since ? live.run.state : saved
}

/** Keeps a WebSocket to the project's events open and `live` up to date; reconnects on a gap
 * or a dropped connection. It asks the server for frames of several messages (`batch=true`:
 * each frame a JSON list of what the server had queued for this tab; a lone message is read
 * too) and applies each frame's messages together (`applyMessages`): a run of a thousand tasks
 * sends thousands of changes a second, and a page that copied the states and re-rendered per
 * change, read from a frame per change, fell minutes behind. Returns the function that closes
 * it. */
export function follow(
  url: string,
  live: LiveStates,
  onChange: (e: RunEvent | null) => void = () => {},
  WS: typeof WebSocket = WebSocket,
): () => void {
  let ws: WebSocket | null = null
  let closed = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let queue: EventMessage[] = []
  let cancel: (() => void) | null = null
  const drain = () => {
    cancel = null
    const msgs = queue
    queue = []
    const { applied, gap } = applyMessages(live, msgs)
    if (gap) ws?.close()
    for (const e of applied) onChange(e)
  }
  const open = () => {
    if (closed) return
    ws = new WS(url + (url.includes('?') ? '&' : '?') + 'batch=true')
    ws.onmessage = (m) => {
      if (closed) return
      // a frame holds the messages the server had queued for this tab (`batch=true`)
      const got = JSON.parse(String(m.data)) as EventMessage | EventMessage[]
      if (Array.isArray(got)) queue.push(...got)
      else queue.push(got)
      cancel ??= afterThisTask(drain)
    }
    ws.onclose = () => {
      ws = null
      if (!closed) timer = setTimeout(open, 1000)
    }
  }
  open()
  return () => {
    closed = true
    clearTimeout(timer)
    cancel?.()
    queue = []
    ws?.close()
  }
}
