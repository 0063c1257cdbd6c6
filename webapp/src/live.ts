// The live states of one project's components, from the server's WebSocket
// `/api/projects/{id}/events`: first a snapshot, then changes numbered 1, 2, 3 …
// The rules are the server's hub's: a change of another run than the current one starts the
// components' states afresh; a snapshot replaces everything. Edits of the project (by any tab,
// the CLI or an editor) are numbered in the same sequence; SSH login prompts of a run (`ask`,
// closed by `asked`) come on the same socket, unnumbered, and are answered on it.

import type { RunEvent } from './api'

/** An edit of the project: `by` is the client id of the tab that made it (null: outside the
 * server, or a client without an id); `id` is the project's new id after a rename. */
export interface EditMessage {
  type: 'edit'
  seq: number
  what: string
  component: string | null
  by: string | null
  id?: string
}

/** A run's SSH login asks for a passphrase, password or one-time code (`echo` false: hidden). */
export interface AskMessage {
  type: 'ask'
  id: number
  prompt: string
  echo: boolean
}

export type EventMessage =
  | { type: 'snapshot'; seq: number; run: RunEvent | null; states: Record<string, RunEvent>; edit?: number }
  | { type: 'change'; seq: number; event: RunEvent }
  | EditMessage

export type PromptMessage = AskMessage | { type: 'asked'; id: number }

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
  edit: number // the number of the last edit of the project (0: none known)
}

export function emptyStates(): LiveStates {
  return { seq: -1, current: 0, run: null, states: {}, seqOf: {}, runSeq: -1, edit: 0 }
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
    live.edit = msg.edit ?? 0
    return 'applied'
  }
  if (live.seq < 0) return 'gap' // a change before any snapshot
  if (msg.seq <= live.seq) return 'seen'
  if (msg.seq !== live.seq + 1) return 'gap'
  live.seq = msg.seq
  if (msg.type === 'edit') {
    live.edit = msg.seq
    return 'applied'
  }
  const e = msg.event
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
    // in place: one change costs one key, not a copy of every component's state (a copy per
    // change made a 1,000-task run fall minutes behind in the browser)
    live.states[e.key] = e
    live.seqOf[e.key] = msg.seq
  }
  return 'applied'
}

/** The state to show for a component: its live one when that came after the project was read
 * (`since`: the number of the last change before that read), else the one read. */
export function stateOf(live: LiveStates, path: string, saved: string, since = -1): string {
  const e = live.states[path]
  if (!e) return saved
  if ((live.seqOf[path] ?? -1) > since) return e.state
  // while a run goes on, what it told is never older than a file read meanwhile (the file may
  // not have been written yet when it was read; no edit or clean is allowed while it runs)
  return live.run && !OVER.has(live.run.state) && e.run === live.run.run ? e.state : saved
}

/** The run's state to show, by the same rule. */
export function runStateOf(live: LiveStates, saved: string, since = -1): string {
  return live.run && live.runSeq > since ? live.run.state : saved
}

/** What a tab does with the messages besides run states. */
export interface FollowHandlers {
  // an edit of the project by another tab or outside the server (not one of `self`'s), or a
  // snapshot whose last edit is newer than the one seen before it (edits missed while away)
  onEdit?: (e: EditMessage | null) => void
  onAsk?: (a: AskMessage) => void // a login prompt to show
  onAsked?: (id: number) => void // a prompt answered (by any tab) or given up: close it
  self?: string // this tab's client id (the one its requests send)
}

/** The function that stops following, and the way to answer a prompt on the same socket. */
export type Follower = (() => void) & {
  answer: (id: number, text: string) => boolean
  cancel: (id: number) => boolean
}

/** Reads one message: a state change, an edit, a snapshot or a prompt; says whether it was
 * applied, seen or a gap, and tells `handlers` what concerns them. */
export function handleMessage(
  live: LiveStates,
  msg: EventMessage | PromptMessage,
  handlers: FollowHandlers = {},
): Applied {
  if (msg.type === 'ask') {
    handlers.onAsk?.(msg)
    return 'applied'
  }
  if (msg.type === 'asked') {
    handlers.onAsked?.(msg.id)
    return 'applied'
  }
  const before = live.edit
  const known = live.seq >= 0
  const got = applyMessage(live, msg)
  if (got !== 'applied') return got
  if (msg.type === 'edit') {
    if (msg.by === null || msg.by !== handlers.self) handlers.onEdit?.(msg)
  } else if (msg.type === 'snapshot' && known && live.edit > before) {
    handlers.onEdit?.(null) // a re-sync past edits not seen one by one
  }
  return got
}

/** How long a message waits for the others of its batch (ms). */
export const BATCH_MS = 16

/** Keeps a WebSocket to the project's events open and `live` up to date; reconnects on a gap
 * or a dropped connection. Returns the function that closes it (with `answer`/`cancel` for the
 * login prompts `handlers.onAsk` is shown). */
export function follow(
  url: string,
  live: LiveStates,
  onChange: (e: RunEvent | null) => void = () => {},
  WS: typeof WebSocket = WebSocket,
  handlers: FollowHandlers = {},
): Follower {
  let ws: WebSocket | null = null
  let closed = false
  let timer: ReturnType<typeof setTimeout> | undefined
  // messages are applied in batches: those that arrived while the page was busy (drawing the
  // last batch) are applied together, so the views render once per batch, not once per change.
  // A timer, not an animation frame: a window that draws no frames still gets its changes.
  let queue: { socket: WebSocket; msg: EventMessage | PromptMessage }[] = []
  let draining: ReturnType<typeof setTimeout> | undefined
  const drain = () => {
    draining = undefined
    const batch = queue
    queue = []
    for (const { socket, msg } of batch) {
      if (socket !== ws) continue // of a socket closed since (a gap): its successor re-syncs
      const got = handleMessage(live, msg, handlers)
      if (got === 'gap') {
        socket.close()
      } else if (got === 'applied' && (msg.type === 'change' || msg.type === 'snapshot')) {
        onChange(msg.type === 'change' ? msg.event : null)
      }
    }
  }
  const open = () => {
    if (closed) return
    const socket = new WS(url)
    ws = socket
    socket.onmessage = (m) => {
      queue.push({ socket, msg: JSON.parse(String(m.data)) as EventMessage | PromptMessage })
      if (draining === undefined) draining = setTimeout(drain, BATCH_MS)
    }
    socket.onclose = () => {
      if (ws === socket) ws = null
      if (!closed && ws === null) timer = setTimeout(open, 1000)
    }
  }
  open()
  const send = (m: object): boolean => {
    if (!ws || ws.readyState !== 1) return false // not open: the prompt is asked again on reconnect
    ws.send(JSON.stringify(m))
    return true
  }
  const stop = () => {
    closed = true
    clearTimeout(timer)
    clearTimeout(draining)
    queue = []
    ws?.close()
  }
  return Object.assign(stop, {
    answer: (id: number, text: string) => send({ type: 'answer', id, text }),
    cancel: (id: number) => send({ type: 'cancel', id }),
  })
}
