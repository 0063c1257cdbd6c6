import { afterEach, describe, expect, it, vi } from 'vitest'
import { reactive, watch } from 'vue'
import type { RunEvent } from '../src/api'
import { applyMessage, applyMessages, emptyStates, follow, runStateOf, stateOf, type EventMessage } from '../src/live'

function ev(run: number, key: string, state: string, kind = 'task'): RunEvent {
  return { run, key, kind, state, attempt: 0, returncode: null, message: '', time: 0 }
}
const change = (seq: number, event: RunEvent): EventMessage => ({ type: 'change', seq, event })

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

  it('believe the project’s files over the snapshot of a run that is over', () => {
    const live = emptyStates()
    applyMessage(live, { type: 'snapshot', seq: 9, run: ev(2, '', 'stopped', 'run'), states: { a: ev(2, 'a', 'stopped') } })
    expect(stateOf(live, 'a', 'not-started')).toBe('not-started') // cleaned since, say
    expect(runStateOf(live, 'not-started')).toBe('not-started')
    applyMessage(live, change(10, ev(3, 'a', 'running')))
    expect(stateOf(live, 'a', 'not-started')).toBe('running') // a new run: live again
  })
})

// a WebSocket that the test feeds: `deliver` calls `onmessage` as a browser would, one task each
class FakeSocket {
  static last: FakeSocket | null = null
  onmessage: ((m: { data: string }) => void) | null = null
  onclose: (() => void) | null = null
  closed = false
  constructor(readonly url: string) {
    FakeSocket.last = this
  }
  deliver(msg: EventMessage | EventMessage[]) {
    this.onmessage?.({ data: JSON.stringify(msg) })
  }
  close() {
    this.closed = true
    this.onclose?.()
  }
}

describe('messages applied together', () => {
  afterEach(() => {
    vi.useRealTimers()
    vi.unstubAllGlobals()
  })

  it('end in the states that applying them one by one gives', () => {
    const batches: EventMessage[][] = [
      [
        { type: 'snapshot', seq: 2, run: ev(1, '', 'running', 'run'), states: { a: ev(1, 'a', 'running') } },
        change(3, ev(1, 'a', 'finished')),
        change(3, ev(1, 'a', 'failed')), // seen already
        change(4, ev(1, 'b', 'running')),
        change(5, ev(1, '', 'finished', 'run')),
        change(6, ev(2, 'a', 'running')), // the next run: afresh
        change(7, ev(2, 'c', 'queued')),
      ],
      [change(1, ev(1, 'a', 'running'))], // before any snapshot: a gap
      [
        { type: 'snapshot', seq: 0, run: null, states: {} },
        change(1, ev(1, 'a', 'running')),
        change(3, ev(1, 'a', 'finished')), // a gap: the rest is not applied
        change(4, ev(1, 'b', 'running')),
      ],
    ]
    for (const msgs of batches) {
      const one = emptyStates()
      const got: (RunEvent | null)[] = []
      let gap = false
      for (const m of msgs) {
        const r = applyMessage(one, m)
        if (r === 'gap') {
          gap = true
          break
        }
        if (r === 'applied') got.push(m.type === 'change' ? m.event : null)
      }
      const all = emptyStates()
      expect(applyMessages(all, msgs)).toEqual({ applied: got, gap })
      expect(all).toEqual(one)
    }
  })

  it('change a reactive view of a thousand components once per socket frame, not once per change', async () => {
    const live = reactive(emptyStates())
    let renders = 0
    watch(() => live.states, () => renders++, { flush: 'sync' })
    const seen: (RunEvent | null)[] = []
    const stop = follow('ws://x', live, (e) => seen.push(e), FakeSocket as unknown as typeof WebSocket)
    const ws = FakeSocket.last!
    expect(ws.url).toBe('ws://x?batch=true') // frames of several messages, please
    ws.deliver([{ type: 'snapshot', seq: 0, run: ev(1, '', 'running', 'run'), states: {} }])
    let seq = 0
    await Promise.resolve()
    renders = 0 // the snapshot's
    // frames of many, as a server sends what it had queued for a tab that fell behind
    for (const state of ['queued', 'running', 'finished']) {
      ws.deliver(Array.from({ length: 1000 }, (_, i) => change(++seq, ev(1, `t${i}`, state))))
    }
    expect(renders).toBe(0) // nothing before the task is over
    await Promise.resolve()
    expect(renders).toBe(1)
    expect(live.seq).toBe(3000)
    expect(Object.keys(live.states)).toHaveLength(1000)
    expect(Object.values(live.states).every((e) => e.state === 'finished')).toBe(true)
    expect(live.seqOf.t0).toBe(2001)
    expect(seen).toHaveLength(3001) // the snapshot (null) and every change, in order
    expect(seen[0]).toBeNull()
    expect(seen[1]?.state).toBe('queued')
    ws.deliver(change(++seq, ev(1, '', 'finished', 'run')))
    await Promise.resolve()
    expect(live.run?.state).toBe('finished')
    expect(renders).toBe(1) // the run's own event leaves the components' states alone
    stop()
  })

  it('take a lone message too, and close the socket on a gap', async () => {
    vi.useFakeTimers()
    const live = emptyStates()
    const stop = follow('ws://x?a=1', live, () => {}, FakeSocket as unknown as typeof WebSocket)
    const ws = FakeSocket.last!
    expect(ws.url).toBe('ws://x?a=1&batch=true')
    ws.deliver({ type: 'snapshot', seq: 5, run: null, states: {} }) // a lone message is read too
    ws.deliver(change(6, ev(1, 'a', 'running')))
    await Promise.resolve()
    expect(live.states.a?.state).toBe('running')
    ws.deliver(change(8, ev(1, 'a', 'finished'))) // 7 never came
    await Promise.resolve()
    expect(ws.closed).toBe(true)
    expect(live.seq).toBe(6)
    stop()
    ws.deliver(change(7, ev(1, 'a', 'finished'))) // after the stop: never applied
    await Promise.resolve()
    vi.advanceTimersByTime(2000) // and no reconnection after the stop
    expect(FakeSocket.last).toBe(ws)
    expect(live.seq).toBe(6)
  })
})
