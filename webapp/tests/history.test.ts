import { describe, expect, it } from 'vitest'
import type { RunInfo } from '../src/api'
import { duration, historyRows, localTime, taskCounts } from '../src/history'

function run(id: number, started: number, ended: number | null, state: string, extra: Partial<RunInfo> = {}): RunInfo {
  return { id, started, ended, state, pid: null, info: {}, ...extra }
}

describe('the run history', () => {
  it('writes durations in words', () => {
    expect(duration(0.42)).toBe('0.4 s')
    expect(duration(12.4)).toBe('12 s')
    expect(duration(185)).toBe('3 min 05 s')
    expect(duration(7380)).toBe('2 h 03 min')
    expect(duration(-1)).toBe('0.0 s')
  })

  it('counts finished and failed tasks first', () => {
    expect(taskCounts({ skipped: 2, failed: 1, finished: 3 })).toBe('3 finished, 1 failed, 2 skipped')
    expect(taskCounts({ finished: 0, stopped: 1 })).toBe('1 stopped')
    expect(taskCounts(undefined)).toBe('')
  })

  it('lists the newest run first, one still running up to now', () => {
    const t0 = new Date(2026, 0, 2, 3, 4, 5).getTime() / 1000
    const rows = historyRows(
      [
        run(1, t0, t0 + 65, 'finished', { tasks: { finished: 4 }, info: { git: '0123456789abcdef', dirty: true } }),
        run(3, t0 + 200, null, 'running', { tasks: { finished: 1 } }),
        run(2, t0 + 100, t0 + 100.2, 'finished', { tasks: {}, info: { nothing_to_do: true } }),
      ],
      t0 + 230,
    )
    expect(rows.map((r) => r.id)).toEqual([3, 2, 1])
    expect(rows[0]).toMatchObject({ state: 'running', ended: '', duration: '30 s so far', tasks: '1 finished' })
    expect(rows[1]).toMatchObject({ duration: '0.2 s', tasks: 'nothing to do', version: '' })
    expect(rows[2]).toMatchObject({ started: '2026-01-02 03:04:05', ended: localTime(t0 + 65), duration: '1 min 05 s', version: '01234567+unsaved' })
  })
})
