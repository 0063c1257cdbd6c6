// The hosts screen's logic (src/hosts.ts): the host form, the connection test's messages and an
// import's host mapping; the parts that talk to the server against a real `sharin ui`.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ApiError } from '../src/api'
import { useServer } from './server'
import {
  HOST_FIELDS,
  emptyForm,
  entryFromForm,
  formFromEntry,
  hostMap,
  initialMapping,
  isUnknownHosts,
  outcomeText,
  testHost,
} from '../src/hosts'

describe('the host form', () => {
  it('is filled with an entry and gives it back with the edits, keeping what it does not show', () => {
    const raw = { id: 'abc', name: 'c', host: 'login', username: 'me', port: 2222, queue: ['a', 'b'], useBulkjob: true, extra: 1 }
    const f = formFromEntry(raw)
    expect(f).toMatchObject({ name: 'c', host: 'login', user: 'me', port: '2222', queue: 'a, b', useBulkjob: true, useStepjob: false, path: '' })
    f.path = '/work/me'
    f.numJob = '20'
    f.queue = 'a, b ,c'
    f.useBulkjob = false
    expect(entryFromForm(f, raw)).toEqual({
      id: 'abc',
      name: 'c',
      host: 'login',
      username: 'me', // an entry of WHEEL 2022 keeps its field name
      port: 2222,
      path: '/work/me',
      queue: ['a', 'b', 'c'], // a list stays a list
      numJob: 20,
      useBulkjob: false,
      extra: 1,
    })
  })

  it('leaves out what is empty and sends a number it cannot read as typed', () => {
    const f = emptyForm()
    Object.assign(f, { name: ' n ', host: 'h', port: 'x22', queue: 'small,large' })
    expect(entryFromForm(f)).toEqual({ name: 'n', host: 'h', port: 'x22', queue: 'small,large' })
    expect(Object.keys(emptyForm())).toEqual(HOST_FIELDS.map((d) => d.key))
    const edited = entryFromForm({ ...formFromEntry({ name: 'n', host: 'h', path: '/p' }), path: '' }, { name: 'n', host: 'h', path: '/p' })
    expect(edited).toEqual({ name: 'n', host: 'h' })
    expect(entryFromForm({ ...emptyForm(), name: 'n', host: 'h', user: 'u' }, { username: 'old', user: 'x' })).toEqual({ username: 'old', name: 'n', host: 'h', user: 'u' })
  })
})

describe('an import’s host mapping', () => {
  const u = { unknown_hosts: ['fugaku', 'cluster'], hosts: ['localhost', 'cluster'] }
  it('starts from a host of the same label, else the first offered', () => {
    expect(isUnknownHosts(u)).toBe(true)
    expect(isUnknownHosts({ error: 'x' })).toBe(false)
    expect(isUnknownHosts(null)).toBe(false)
    expect(initialMapping(u)).toEqual({ fugaku: 'localhost', cluster: 'cluster' })
  })
  it('maps only onto hosts offered and names the labels left', () => {
    expect(hostMap(u, { fugaku: 'cluster', cluster: 'localhost' })).toEqual({ map: { fugaku: 'cluster', cluster: 'localhost' }, missing: [] })
    expect(hostMap(u, { fugaku: 'nowhere' })).toEqual({ map: {}, missing: ['fugaku', 'cluster'] })
  })
})

/** A WebSocket that plays the server's side of a host test from a script of messages. */
function scripted(replies: (sent: any) => any[], first: any[]) {
  const sent: any[] = []
  class Scripted {
    onmessage: ((m: { data: string }) => void) | null = null
    onclose: (() => void) | null = null
    closed = false
    constructor(readonly url: string) {
      setTimeout(() => this.deliver(first), 0)
    }
    deliver(ms: any[]) {
      for (const m of ms) if (!this.closed) this.onmessage?.({ data: JSON.stringify(m) })
    }
    send(text: string) {
      const m = JSON.parse(text)
      sent.push(m)
      setTimeout(() => this.deliver(replies(m)), 0)
    }
    close() {
      if (this.closed) return
      this.closed = true
      setTimeout(() => this.onclose?.(), 0)
    }
  }
  return { WS: Scripted as unknown as typeof WebSocket, sent }
}

describe('a connection test', () => {
  const result = { type: 'result', host: 'c', where: 'me@c', round_trip: 0.0123, connect_time: 0.2, commands: { sbatch: '/usr/bin/sbatch' } }

  it('answers each question with what the user typed, then gives the result', async () => {
    const { WS, sent } = scripted(() => [result], [{ type: 'ask', prompt: 'passphrase for key: ', echo: false }])
    const asked: [string, boolean][] = []
    const o = await testHost('ws://x/api/hosts/c/test', async (p, e) => (asked.push([p, e]), 'secret'), WS)
    expect(asked).toEqual([['passphrase for key: ', false]])
    expect(sent).toEqual([{ type: 'answer', text: 'secret' }])
    expect(o.kind).toBe('result')
    expect(outcomeText(o)).toBe('connected in 200 ms, round trip 12 ms; scheduler commands: sbatch')
  })

  it('closes the socket when the question is cancelled, and reports an error or a lost server', async () => {
    const c = scripted(() => [result], [{ type: 'ask', prompt: 'Password: ', echo: false }])
    expect(await testHost('ws://x', async () => null, c.WS)).toEqual({ kind: 'cancelled' })
    expect(c.sent).toEqual([])
    const e = scripted(() => [], [{ type: 'error', error: 'no host named c' }])
    const err = await testHost('ws://x', async () => '', e.WS)
    expect(outcomeText(err)).toBe('no host named c')
    const gone = scripted(() => [], [])
    const g = new (gone.WS as any)('ws://x')
    const lost = testHost('ws://x', async () => '', class { constructor() { return g } } as unknown as typeof WebSocket)
    g.close()
    expect((await lost).kind).toBe('error')
    expect(outcomeText({ kind: 'result', result: { ...result, commands: {} } })).toContain('no scheduler commands found')
  })
})

// ------------------------------------------------------------------ against a real server
const srv = useServer('hosts')

describe('the hosts API', () => {
  it('edits and renames a host from the form', async () => {
    await srv.client.addHost(entryFromForm({ ...emptyForm(), name: 'a', host: 'a.example.org', path: '/work' }))
    const [h] = await srv.client.hosts()
    const f = formFromEntry(h.config.raw)
    f.name = 'b'
    f.path = '/scratch'
    expect(await srv.client.replaceHost('a', entryFromForm(f, h.config.raw))).toEqual({ name: 'b' })
    const [after] = await srv.client.hosts()
    expect([after.config.name, after.config.path, after.config.raw.id]).toEqual(['b', '/scratch', h.config.raw.id])
    const bad = await srv.client.replaceHost('b', { ...after.config.raw, port: 'x22' }).catch((x) => x)
    expect(bad).toBeInstanceOf(ApiError)
    expect(bad.message).toContain('port')
    const missing = await srv.client.replaceHost('a', { name: 'a', host: 'x' }).catch((x) => x)
    expect(missing.status).toBe(404)
    expect(srv.client.hostTestUrl('a b')).toBe(`${srv.client.base.replace('http', 'ws')}/api/hosts/a%20b/test`)
    await srv.client.removeHost('b')
  })

  it('imports an archive whose host is unknown once it is mapped', async () => {
    const p = await srv.client.newProject('hosted')
    const t = await srv.client.addComponent(p.id, 'task', 't')
    await srv.client.setProperties(p.id, t.id, { host: 'fugaku' })
    await srv.client.save(p.id, 'v1')
    const res = await fetch(srv.client.exportUrl(p.id), { headers: { Authorization: `Bearer ${srv.client.token}` } })
    const archive = new Blob([await res.arrayBuffer()])
    await srv.client.deleteProject(p.id, 'hosted')
    const e = await srv.client.importArchive(archive, 'WHEEL_project_hosted.tgz').catch((x) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect(e.status).toBe(409)
    expect(isUnknownHosts(e.data)).toBe(true)
    expect(e.data.unknown_hosts).toEqual(['fugaku'])
    const bad = await srv.client.importArchive(archive, 'a.tgz', { fugaku: 'nowhere' }).catch((x) => x)
    expect(bad.status).toBe(400)
    expect(bad.message).toContain('fugaku=nowhere')
    const { map } = hostMap(e.data, initialMapping(e.data))
    const q = await srv.client.importArchive(archive, 'WHEEL_project_hosted.tgz', map)
    expect(q.workflow.children[0].properties.host).toBe('localhost')
    expect(JSON.parse(readFileSync(join(q.root, 't', 'cmp.wheel.json'), 'utf8')).host).toBe('localhost')
  })

  it.skipIf(typeof globalThis.WebSocket === 'undefined')('tests an unknown host over the real WebSocket: one clear error', async () => {
    const o = await testHost(`${srv.client.hostTestUrl('nowhere')}?token=${srv.client.token}`, async () => null)
    expect(o.kind).toBe('error')
    expect(outcomeText(o)).toContain('nowhere')
  })
})
