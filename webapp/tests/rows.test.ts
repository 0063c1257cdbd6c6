import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { RunEvent } from '../src/api'
import { applyMessage, emptyStates, type LiveStates } from '../src/live'
import { buildTree, duration, localTime, natural, Refresher, shown, unseen, visible, type TaskRow } from '../src/rows'

function row(key: string, parent: string, extra: Partial<TaskRow> = {}): TaskRow {
  const name = key.split('/').pop()!.replace(/_.*$/, '')
  return {
    key, parent, id: null, name, type: 'task', trip: null, state: 'finished', attempt: 1, host: 'localhost',
    job_id: null, returncode: 0, started: 100, ended: 110, message: null, ...extra,
  }
}

function ev(key: string, state: string, time: number, run = 1): RunEvent {
  return { run, key, kind: 'task', state, attempt: 1, returncode: null, message: '', time }
}

/** The rows of a for loop of `trips` trips of `t` and a study of `instances` instances of `u`, shuffled. */
function project(trips: number, instances: number): TaskRow[] {
  const rows = [row('loop', '', { type: 'for' }), row('ps', '', { type: 'parameterStudy' }), row('plain', '', { job_id: '4242' })]
  for (let i = 0; i < trips; i++) {
    rows.push(row(`loop_${i}`, 'loop', { type: 'for', trip: String(i) }), row(`loop_${i}/t`, `loop_${i}`, { job_id: String(1000 + i) }))
  }
  for (let k = 1; k <= instances; k++) {
    rows.push(row(`ps_K_${k}`, 'ps', { type: 'parameterStudy', trip: `K_${k}` }), row(`ps_K_${k}/u`, `ps_K_${k}`, { job_id: String(2000 + k), host: 'cluster' }))
  }
  return rows.reverse()
}

const keys = (es: { row: TaskRow }[]) => es.map((e) => e.row.key)

describe('the rows of the list view', () => {
  it('put trips and instances under their loop or study, in natural order, with depths', () => {
    const tree = buildTree(project(11, 2))
    expect(keys(tree.entries)).toEqual([
      'loop',
      ...Array.from({ length: 11 }, (_, i) => [`loop_${i}`, `loop_${i}/t`]).flat(),
      'plain',
      'ps', 'ps_K_1', 'ps_K_1/u', 'ps_K_2', 'ps_K_2/u',
    ])
    const at = (k: string) => tree.entries[tree.index.get(k)!]
    expect([at('loop').depth, at('loop_10').depth, at('loop_10/t').depth, at('plain').depth]).toEqual([0, 1, 2, 0])
    expect(at('loop').end).toBe(tree.index.get('plain'))
    expect(at('ps_K_1').end).toBe(tree.index.get('ps_K_2'))
  })

  it('order keys naturally', () => {
    const ks = ['ps_K_10', 'ps_K_9', 'ps_K_1_L_10', 'ps_K_1_L_9', 'a', 'ps_K_09x', 'ps', 'b2', 'b10', 'ps_K_0010']
    expect([...ks].sort(natural)).toEqual(['a', 'b2', 'b10', 'ps', 'ps_K_1_L_9', 'ps_K_1_L_10', 'ps_K_9', 'ps_K_09x', 'ps_K_10', 'ps_K_0010'])
    expect(natural('x1', 'x1')).toBe(0)
  })

  it('show a row whose parent is missing at the top, and a key given twice once', () => {
    const tree = buildTree([row('a_1/t', 'a_1'), row('b', ''), row('b', '')])
    expect(keys(tree.entries)).toEqual(['a_1/t', 'b'])
    expect(tree.entries[0].depth).toBe(0)
  })

  it('fold a row: what is under it is left out, the rows after it stay', () => {
    const tree = buildTree(project(3, 2))
    const state = (r: TaskRow) => r.state
    expect(keys(visible(tree, new Set(['loop', 'ps_K_1']), '', state).entries)).toEqual(['loop', 'plain', 'ps', 'ps_K_1', 'ps_K_2', 'ps_K_2/u'])
    expect(keys(visible(tree, new Set(['loop_1']), '', state).entries)).toContain('loop_2/t')
    expect(keys(visible(tree, new Set(['loop_1']), '', state).entries)).not.toContain('loop_1/t')
  })

  it('filter by name, type, state, host and job id, folded or not, and cap what is shown', () => {
    const tree = buildTree(project(3, 4))
    const state = (r: TaskRow) => (r.key === 'ps_K_3/u' ? 'running' : r.state)
    const f = (text: string, limit = Infinity) => visible(tree, new Set(['ps']), text, state, limit)
    expect(keys(f('1002').entries)).toEqual(['loop_2/t']) // a job id
    expect(keys(f('RUNNING').entries)).toEqual(['ps_K_3/u']) // the live state, any case
    expect(keys(f('cluster').entries)).toHaveLength(4) // a host, inside the folded study too
    expect(keys(f('parameterstudy').entries)).toEqual(['ps', 'ps_K_1', 'ps_K_2', 'ps_K_3', 'ps_K_4'])
    expect(keys(f('plain').entries)).toEqual(['plain'])
    expect(f('  ').entries.length).toBe(visible(tree, new Set(['ps']), '', state).entries.length) // blank: no filter
    const capped = f('ps_k', 3)
    expect([capped.entries.length, capped.more, capped.matched]).toEqual([3, true, 8])
    const all = visible(tree, new Set(), '', state, 5)
    expect([all.entries.length, all.more]).toEqual([5, true])
  })

  it('stay linear for a study of 10,000 instances', () => {
    const rows = project(0, 10000)
    const t0 = performance.now()
    const tree = buildTree(rows)
    const got = visible(tree, new Set(), 'k_9999', (r) => r.state)
    const folded = visible(tree, new Set(['ps']), '', (r) => r.state)
    expect(keys(got.entries)).toEqual(['ps_K_9999', 'ps_K_9999/u'])
    expect(keys(folded.entries)).toEqual(['loop', 'plain', 'ps'])
    expect(performance.now() - t0).toBeLessThan(3000) // quadratic would be minutes
  })
})

describe('a row shown with the live states', () => {
  function live(states: [string, string, number][], seq = 10): LiveStates {
    const l = emptyStates()
    applyMessage(l, { type: 'snapshot', seq: 0, run: ev('', 'running', 0), states: {} })
    states.forEach(([k, s, t], i) => applyMessage(l, { type: 'change', seq: i + 1, event: ev(k, s, t) }))
    expect(l.seq).toBe(Math.min(seq, states.length))
    return l
  }

  it('takes a live state newer than the rows, with its time as the end or the start', () => {
    const l = live([['a', 'running', 200], ['b', 'running', 201], ['b', 'failed', 205], ['c', 'queued', 202]], 4)
    const a = row('a', '', { state: 'not-started', started: null, ended: null })
    expect(shown(a, l, 0)).toEqual({ state: 'running', started: 200, ended: null })
    expect(shown(row('b', '', { state: 'running', ended: null }), l, 0)).toEqual({ state: 'failed', started: 100, ended: 205 })
    expect(shown(row('c', ''), l, 0)).toEqual({ state: 'queued', started: null, ended: null })
    // the rows read after those changes: theirs is newer
    expect(shown(a, l, 4)).toEqual({ state: 'not-started', started: null, ended: null })
    expect(shown(row('zz', ''), l, 0).state).toBe('finished') // no live state
  })

  it('finds a live key the rows do not have, looking only at the keys added since last time', () => {
    const tree = buildTree([row('a', ''), row('b', '')])
    const l = live([['a', 'running', 1], ['b', 'running', 2]], 2)
    const first = unseen(l, tree.index)
    expect(first).toEqual({ found: false, checked: 2 })
    applyMessage(l, { type: 'change', seq: 3, event: ev('loop_7', 'running', 3) })
    applyMessage(l, { type: 'change', seq: 4, event: ev('a', 'finished', 4) })
    expect(unseen(l, tree.index, first.checked).found).toBe(true)
    expect(unseen(l, buildTree([row('a', ''), row('b', ''), row('loop_7', '')]).index, first.checked)).toEqual({ found: false, checked: 3 })
  })
})

describe('refreshing the rows', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('loads at most once per interval however often asked, and at once when the run ends', async () => {
    let loads = 0
    let release = () => {}
    const r = new Refresher(
      () => {
        loads++
        return new Promise<void>((res) => (release = res))
      },
      2000,
      () => Date.now(),
    )
    r.soon()
    await vi.advanceTimersByTimeAsync(0)
    expect(loads).toBe(1)
    for (let i = 0; i < 50; i++) r.soon() // asked again while loading: once after it
    release()
    await vi.advanceTimersByTimeAsync(1900)
    expect(loads).toBe(1)
    await vi.advanceTimersByTimeAsync(100)
    expect(loads).toBe(2)
    r.now() // asked at once while one is under way: right after it, no second one at the same time
    expect(loads).toBe(2)
    release()
    await vi.advanceTimersByTimeAsync(0)
    expect(loads).toBe(3)
    release()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(loads).toBe(3) // nothing asked: nothing loaded
    r.close()
    r.now()
    r.soon()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(loads).toBe(3)
  })
})

describe('times and durations', () => {
  it('are written for people', () => {
    expect(duration(null, 5)).toBe('')
    expect(duration(10, 10.42)).toBe('0.4 s')
    expect(duration(0, 42.9)).toBe('42 s')
    expect(duration(0, 185)).toBe('3 min 05 s')
    expect(duration(0, 7440)).toBe('2 h 04 min')
    expect(localTime(null)).toBe('')
    const t = new Date(2026, 11, 2, 7, 5, 9).getTime() / 1000
    expect(localTime(t, new Date(2026, 11, 2, 23, 0))).toBe(new Date(t * 1000).toLocaleTimeString())
    expect(localTime(t, new Date(2026, 11, 3))).toBe(new Date(t * 1000).toLocaleString())
  })
})
