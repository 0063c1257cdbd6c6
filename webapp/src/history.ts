// The run history's rows: what the server's `GET /api/projects/{pid}/runs` gives, newest first,
// with times in the browser's local time, durations and the tasks' counts in words.
import type { RunInfo } from './api'

export interface HistoryRow {
  id: number
  state: string
  started: string
  ended: string
  duration: string
  tasks: string
  version: string
}

function pad(n: number): string {
  return String(n).padStart(2, '0')
}

/** Epoch seconds as `YYYY-MM-DD HH:MM:SS` in local time. */
export function localTime(t: number): string {
  const d = new Date(t * 1000)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/** A duration in seconds in words: `0.4 s`, `12 s`, `3 min 05 s`, `2 h 03 min`. */
export function duration(seconds: number): string {
  const s = Math.max(0, seconds)
  if (s < 10) return `${s.toFixed(1)} s`
  if (s < 60) return `${Math.round(s)} s`
  const whole = Math.round(s)
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${pad(whole % 60)} s`
  return `${Math.floor(whole / 3600)} h ${pad(Math.floor((whole % 3600) / 60))} min`
}

/** The tasks' counts, finished and failed first: `3 finished, 1 failed, 2 skipped`. */
export function taskCounts(counts: Record<string, number> | undefined): string {
  if (!counts) return ''
  const order = ['finished', 'failed']
  const keys = Object.keys(counts).filter((k) => counts[k] > 0)
  keys.sort((a, b) => {
    const [i, j] = [order.indexOf(a), order.indexOf(b)]
    return (i < 0 ? order.length : i) - (j < 0 ? order.length : j) || a.localeCompare(b)
  })
  return keys.map((k) => `${counts[k]} ${k}`).join(', ')
}

/** The runs as rows, newest first; a run not ended yet lasts until `now` (epoch seconds). */
export function historyRows(runs: RunInfo[], now: number): HistoryRow[] {
  return [...runs]
    .sort((a, b) => b.id - a.id)
    .map((r) => {
      const git = typeof r.info?.git === 'string' ? r.info.git.slice(0, 8) : ''
      return {
        id: r.id,
        state: r.state,
        started: localTime(r.started),
        ended: r.ended === null ? '' : localTime(r.ended),
        duration: duration((r.ended ?? now) - r.started) + (r.ended === null ? ' so far' : ''),
        tasks: r.info?.nothing_to_do === true && !taskCounts(r.tasks) ? 'nothing to do' : taskCounts(r.tasks),
        version: git && r.info?.dirty === true ? `${git}+unsaved` : git,
      }
    })
}
