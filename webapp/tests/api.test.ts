// The API client against a real `sharin ui` (python -m sharin ui --no-browser in a temporary
// workspace). SHARIN_PYTHON names the Python that has sharin (default: `python` on PATH).
import { describe, expect, it } from 'vitest'
import { ApiError, Client } from '../src/api'
import { useServer } from './server'

const srv = useServer('api')

async function until<T>(f: () => Promise<T>, ok: (x: T) => boolean, ms = 30000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const x = await f()
    if (ok(x) || Date.now() > end) return x
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe('the API client', () => {
  it('refuses a request without the token with the server’s words', async () => {
    const anonymous = new Client({ base: srv.client.base })
    const e = await anonymous.listProjects().catch((x) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect(e.status).toBe(401)
    expect(e.message).toContain('token')
  })

  it('builds a project, runs it and reads its files and logs', async () => {
    const p = await srv.client.newProject('demo', 'made by the client')
    expect(p.workflow.children).toEqual([])
    expect((await srv.client.listProjects()).map((x) => x.name)).toEqual(['demo'])
    const a = await srv.client.addComponent(p.id, 'task', 'a', undefined, { x: 10, y: 20 })
    const b = await srv.client.addComponent(p.id, 'task', 'b')
    expect(a.properties.pos).toEqual({ x: 10, y: 20 })
    await srv.client.writeFile(p.id, 'a/run.sh', 'echo hi > out.txt\necho to-stdout\n')
    await srv.client.writeFile(p.id, 'b/run.sh', 'cat in.txt > copy.txt\n')
    await srv.client.setProperties(p.id, a.id, { script: 'run.sh', outputFiles: [{ name: 'out.txt', dst: [] }] })
    await srv.client.setProperties(p.id, b.id, { script: 'run.sh' })
    await srv.client.connectFiles(p.id, a.id, 'out.txt', b.id, 'in.txt')
    await srv.client.connect(p.id, a.id, b.id)
    const got = await srv.client.getProject(p.id)
    const kids = Object.fromEntries(got.workflow.children.map((c) => [c.name, c]))
    expect(kids.b.properties.inputFiles[0].name).toBe('in.txt')
    expect(kids.a.properties.next).toEqual([b.id])
    expect(await srv.client.validate(p.id)).toEqual([])
    expect((await srv.client.save(p.id, 'v1')).saved).toBe(true)

    expect((await srv.client.run(p.id)).started).toBe(true)
    const s = await until(() => srv.client.status(p.id), (x) => x.run?.state === 'finished' && x.engine_pid === null)
    expect(s.run.state).toBe('finished')
    expect(await srv.client.readFile(p.id, 'b/copy.txt')).toBe('hi\n')
    expect(await srv.client.log(p.id, 'a')).toBe('to-stdout\n')
    expect((await srv.client.runs(p.id)).length).toBe(1)
    const list = await srv.client.tasks(p.id)
    expect(list.run?.id).toBe(1)
    expect(list.rows.map((r) => [r.key, r.state, r.host]).sort()).toEqual([['a', 'finished', 'localhost'], ['b', 'finished', 'localhost']])
    expect(list.rows.every((r) => /^\d+$/.test(r.job_id ?? '') && r.started !== null)).toBe(true)
    expect((await srv.client.tasks(p.id, 2).catch((x) => x)).status).toBe(404)
    const listing = await srv.client.listFiles(p.id, 'a')
    expect(listing.entries?.map((e) => e.name)).toContain('out.txt')

    const up = await srv.client.upload(p.id, 'a', [{ blob: new Blob(['data']), name: 'input.dat' }])
    expect(up.uploaded[0].path).toBe('a/input.dat')
    expect(await srv.client.readFile(p.id, 'a/input.dat')).toBe('data')
  })

  it('turns a refusal into an ApiError naming the field', async () => {
    const p = await srv.client.newProject('bad')
    const t = await srv.client.addComponent(p.id, 'task', 't')
    const e = await srv.client.setProperties(p.id, t.id, { retry: 'many' }).catch((x) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect(e.status).toBe(400)
    expect(e.message).toContain('retry')
    const v = await srv.client.newProject('').catch((x) => x) // FastAPI's validation answer
    expect(v).toBeInstanceOf(ApiError)
    expect(v.status).toBe(422)
    expect(v.message).toMatch(/^name: /)
    const d = await srv.client.deleteProject(p.id, 'wrong').catch((x) => x)
    expect(d.message).toContain('confirm=bad')
    expect((await srv.client.deleteProject(p.id, 'bad')).deleted).toContain('bad.wheel')
    const gone = await srv.client.getProject(p.id).catch((x) => x)
    expect(gone.status).toBe(404)
  })

  it('renames a project and gives its export and events URLs', async () => {
    const p = await srv.client.newProject('before')
    const r = await srv.client.renameProject(p.id, 'after')
    expect(r.name).toBe('after')
    expect(srv.client.exportUrl(r.id)).toBe(`${srv.client.base}/api/projects/${r.id}/export`)
    expect(srv.client.eventsUrl(r.id)).toBe(`${srv.client.base.replace('http', 'ws')}/api/projects/${r.id}/events`)
    expect(srv.client.logFollowUrl(r.id, 'wf/a b', 'err')).toBe(
      `${srv.client.base.replace('http', 'ws')}/api/projects/${r.id}/log-follow?key=wf%2Fa+b&stream=err`,
    )
    const res = await fetch(srv.client.exportUrl(r.id), { headers: { Authorization: `Bearer ${srv.client.token}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('gzip')
  })
})
