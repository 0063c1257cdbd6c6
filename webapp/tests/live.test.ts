import { describe, expect, it, vi } from 'vitest'
import type { RunEvent } from '../src/api'
import { applyMessage, BATCH_MS, emptyStates, follow, handleMessage, runStateOf, stateOf, type EditMessage, type EventMessage } from '../src/live'

function ev(run: number, key: string, state: string, kind = 'task'): RunEvent {
  return { run, key, kind, state, attempt: 0, returncode: null, message: '', time: 0 }
}
const change = (seq: number, event: RunEvent): EventMessage => ({ type: 'change', seq, event })

/** A WebSocket the test plays the server's side of: `FakeWS.last` is the one opened last. */
class FakeWS {
  static last: FakeWS
  static sent: string[] = []
  readyState = 1
  onmessage: ((m: { data: string }) => void) | null = null
  onclose: (() => void) | null = null
  constructor(public url: string) {
    FakeWS.last = this
  }
  send(data: string) {
    FakeWS.sent.push(data)
  }
  close() {
    this.readyState = 3
    this.onclose?.()
  }
}

describe('the live states of a project', () => {
  it('start from the snapshot and apply the numbered changes after it', () => {
    const live = emptyStates()
    expect(applyMessage(live, { type: 'snapshot', seq: 4, run: ev(2, '', 'running', 'run'), states: { a: ev(2, 'a', 'running') } })).toBe('applied')
    expect(live.current).toBe(2)
    expect(applyMessage(live, change(5, ev(2, 'a', 'finished')))).toBe('applied')
    expect(applyMessage(live, change(6, ev(2, 'b', 'running')))).toBe('applied')
    expect(live.seq).toBe(6)
    expect(stateOf(live, 'a', 'not-started')).toBe('finished')
    expect(stateOf(live, 'b', 'not-started')).toBe('running')
    expect(stateOf(live, 'c', 'not-started')).toBe('not-started') // no event: the saved state
    expect(applyMessage(live, change(7, ev(2, '', 'finished', 'run')))).toBe('applied')
    expect(live.run?.state).toBe('finished')
    expect(Object.keys(live.states).sort()).toEqual(['a', 'b']) // the run's own event is not a component's
  })

  it('ignore a change seen already and report a gap instead of skipping one', () => {
    const live = emptyStates()
    expect(applyMessage(live, change(1, ev(1, 'a', 'running')))).toBe('gap') // before any snapshot
    applyMessage(live, { type: 'snapshot', seq: 2, run: null, states: {} })
    expect(applyMessage(live, change(2, ev(1, 'a', 'running')))).toBe('seen')
    expect(applyMessage(live, change(4, ev(1, 'a', 'finished')))).toBe('gap')
    expect(live.seq).toBe(2)
    expect(live.states).toEqual({})
  })

  it('start the states afresh when a change belongs to another run', () => {
    const live = emptyStates()
    applyMessage(live, { type: 'snapshot', seq: 3, run: ev(1, '', 'finished', 'run'), states: { a: ev(1, 'a', 'finished'), b: ev(1, 'b', 'failed') } })
    applyMessage(live, change(4, ev(2, 'a', 'running')))
    expect(live.current).toBe(2)
    expect(live.run).toBeNull()
    expect(live.states).toEqual({ a: ev(2, 'a', 'running') })
  })

  it('replace everything with a new snapshot', () => {
    const live = emptyStates()
    applyMessage(live, { type: 'snapshot', seq: 1, run: null, states: { a: ev(1, 'a', 'running') } })
    applyMessage(live, change(2, ev(1, 'b', 'running')))
    applyMessage(live, { type: 'snapshot', seq: 10, run: null, states: { c: ev(3, 'c', 'finished') } })
    expect(live.seq).toBe(10)
    expect(live.current).toBe(3) // no run event: the run of the states
    expect(Object.keys(live.states)).toEqual(['c'])
    expect(applyMessage(live, change(11, ev(3, 'c', 'failed')))).toBe('applied')
  })

  it('show a state newer than the project as read over it, and an older one not', () => {
    const live = emptyStates()
    applyMessage(live, { type: 'snapshot', seq: 3, run: ev(1, '', 'running', 'run'), states: { a: ev(1, 'a', 'running') } })
    expect(stateOf(live, 'a', 'not-started')).toBe('running') // a run going on: newer than any file
    applyMessage(live, change(4, ev(1, 'a', 'finished')))
    applyMessage(live, change(5, ev(1, '', 'finished', 'run')))
    expect(stateOf(live, 'a', 'running', 3)).toBe('finished') // read before change 4
    expect(runStateOf(live, 'running', 3)).toBe('finished')
    // the project read again after the run's end: its files say what is true now (a clean)
    expect(stateOf(live, 'a', 'not-started', 5)).toBe('not-started')
    expect(runStateOf(live, 'not-started', 5)).toBe('not-started')
  })

  it('while a run goes on, believe its states over a project read after them', () => {
    const live = emptyStates()
    applyMessage(live, { type: 'snapshot', seq: 0, run: null, states: {} })
    applyMessage(live, change(1, ev(1, '', 'running', 'run')))
    applyMessage(live, change(2, ev(1, 'a', 'running')))
    // the project read after change 2, before the state mirror had written a's file
    expect(stateOf(live, 'a', 'not-started', 2)).toBe('running')
    applyMessage(live, change(3, ev(1, '', 'finished', 'run')))
    expect(stateOf(live, 'a', 'not-started', 3)).toBe('not-started') // over: the files say
  })

  it('believe the project’s files over the snapshot of a run that is over', () => {
    const live = emptyStates()
    applyMessage(live, { type: 'snapshot', seq: 9, run: ev(2, '', 'stopped', 'run'), states: { a: ev(2, 'a', 'stopped') } })
    expect(stateOf(live, 'a', 'not-started')).toBe('not-started') // cleaned since, say
    expect(runStateOf(live, 'not-started')).toBe('not-started')
    applyMessage(live, change(10, ev(3, 'a', 'running')))
    expect(stateOf(live, 'a', 'not-started')).toBe('running') // a new run: live again
  })
})

const edit = (seq: number, by: string | null, what = 'add'): EditMessage => ({ type: 'edit', seq, what, component: null, by })

describe('the edits of a project', () => {
  it('are numbered with the state changes: a missed one is a gap', () => {
    const live = emptyStates()
    applyMessage(live, { type: 'snapshot', seq: 3, run: null, states: {}, edit: 2 })
    expect(live.edit).toBe(2)
    expect(applyMessage(live, edit(4, 'tab-b'))).toBe('applied')
    expect(live.seq).toBe(4)
    expect(live.edit).toBe(4)
    expect(applyMessage(live, change(5, ev(1, 'a', 'running')))).toBe('applied')
    expect(applyMessage(live, edit(5, 'tab-b'))).toBe('seen')
    expect(applyMessage(live, edit(7, 'tab-b'))).toBe('gap')
    expect(live.seq).toBe(5)
    expect(live.states.a.state).toBe('running') // an edit leaves the run's states as they are
  })

  it('of another tab or from outside are told to the tab, its own are not', () => {
    const live = emptyStates()
    const seen: (string | null)[] = []
    const handlers = { self: 'me', onEdit: (e: EditMessage | null) => seen.push(e ? e.by : 'resync') }
    handleMessage(live, { type: 'snapshot', seq: 0, run: null, states: {}, edit: 0 }, handlers)
    handleMessage(live, edit(1, 'me'), handlers)
    handleMessage(live, edit(2, 'other'), handlers)
    handleMessage(live, edit(3, null, 'external'), handlers)
    handleMessage(live, edit(3, 'other'), handlers) // seen already: not told again
    expect(seen).toEqual(['other', null])
    // a re-sync whose last edit is newer than the last one seen: edits were missed
    handleMessage(live, { type: 'snapshot', seq: 9, run: null, states: {}, edit: 8 }, handlers)
    handleMessage(live, { type: 'snapshot', seq: 10, run: null, states: {}, edit: 8 }, handlers)
    expect(seen).toEqual(['other', null, 'resync'])
  })

  it('and the login prompts come on the same socket, unnumbered, answered on it', () => {
    vi.useFakeTimers()
    const sent: string[] = (FakeWS.sent = [])
    const live = emptyStates()
    const asks: number[] = []
    const closed: number[] = []
    const edits: (EditMessage | null)[] = []
    const f = follow('ws://x/events', live, () => {}, FakeWS as unknown as typeof WebSocket, {
      self: 'me',
      onAsk: (a) => asks.push(a.id),
      onAsked: (id) => closed.push(id),
      onEdit: (e) => edits.push(e),
    })
    const deliver = (m: object) => {
      FakeWS.last.onmessage?.({ data: JSON.stringify(m) })
      vi.advanceTimersByTime(BATCH_MS)
    }
    deliver({ type: 'snapshot', seq: 1, run: null, states: {}, edit: 0 })
    deliver({ type: 'ask', id: 7, prompt: 'passphrase for key: ', echo: false })
    expect(asks).toEqual([7])
    expect(live.seq).toBe(1) // a prompt is no numbered change
    expect(f.answer(7, 's3cret')).toBe(true)
    expect(JSON.parse(sent[0])).toEqual({ type: 'answer', id: 7, text: 's3cret' })
    deliver({ type: 'asked', id: 7 })
    expect(closed).toEqual([7])
    expect(f.cancel(8)).toBe(true)
    expect(JSON.parse(sent[1])).toEqual({ type: 'cancel', id: 8 })
    deliver(edit(2, 'other', 'rename'))
    expect(edits.map((e) => e?.what)).toEqual(['rename'])
    f()
    expect(f.answer(9, 'late')).toBe(false) // closed: nothing sent
    expect(sent.length).toBe(2)
    vi.useRealTimers()
  })

  it('are applied in batches: the changes that came while the page was busy, in one go', async () => {
    vi.useFakeTimers()
    const { reactive, watch, nextTick } = await import('vue')
    const live = reactive(emptyStates())
    let renders = 0
    watch(() => Object.values(live.states).map((e) => e.state), () => renders++, { deep: true })
    const changes: (RunEvent | null)[] = []
    const f = follow('ws://x/events', live, (e) => changes.push(e), FakeWS as unknown as typeof WebSocket)
    const deliver = (m: object) => FakeWS.last.onmessage?.({ data: JSON.stringify(m) })
    deliver({ type: 'snapshot', seq: 0, run: null, states: {}, edit: 0 })
    for (let i = 1; i <= 3000; i++) deliver(change(i, ev(1, `t${i % 1000}`, i <= 1000 ? 'running' : 'finished')))
    expect(live.seq).toBe(-1) // nothing applied before the batch's turn
    vi.advanceTimersByTime(BATCH_MS)
    await nextTick()
    expect(live.seq).toBe(3000)
    expect(Object.keys(live.states).length).toBe(1000)
    expect(Object.values(live.states).every((e) => e.state === 'finished')).toBe(true)
    expect(changes.length).toBe(3001) // every change told, in order
    expect(renders).toBe(1) // one render for the whole batch
    // a gap closes the socket; what was queued behind it on that socket is dropped
    deliver(change(3002, ev(1, 't1', 'failed')))
    deliver(change(3003, ev(1, 't2', 'failed')))
    vi.advanceTimersByTime(BATCH_MS)
    expect(live.seq).toBe(3000)
    expect(live.states.t2.state).toBe('finished')
    f()
    vi.useRealTimers()
  })
})
