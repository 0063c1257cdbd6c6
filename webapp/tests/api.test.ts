// The API client against a real `sharin ui` (python -m sharin ui --no-browser in a temporary
// workspace). SHARIN_PYTHON names the Python that has sharin (default: `python` on PATH).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiError, Client } from '../src/api'

let server: ChildProcess
let client: Client
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sharin-webapp-'))
  server = spawn(process.env.SHARIN_PYTHON ?? 'python', ['-m', 'sharin', 'ui', '--no-browser', '--workspace', dir], {
    env: { ...process.env, SHARIN_CONFIG_DIR: join(dir, 'config') }, // no user's hosts leak in
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const url = await new Promise<string>((resolve, reject) => {
    server.on('error', reject)
    server.on('exit', (code) => reject(new Error(`sharin ui exited (${code}); is SHARIN_PYTHON a Python with sharin?`)))
    createInterface({ input: server.stdout! }).once('line', (line) => resolve(line.replace(/^sharin UI: /, '')))
  })
  const [base, token] = url.split('/?token=')
  client = new Client({ base, token })
})

afterAll(() => {
  server?.kill()
  rmSync(dir, { recursive: true, force: true })
})

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
    const anonymous = new Client({ base: client.base })
    const e = await anonymous.listProjects().catch((x) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect(e.status).toBe(401)
    expect(e.message).toContain('token')
  })

  it('builds a project, runs it and reads its files and logs', async () => {
    const p = await client.newProject('demo', 'made by the client')
    expect(p.workflow.children).toEqual([])
    expect((await client.listProjects()).map((x) => x.name)).toEqual(['demo'])
    const a = await client.addComponent(p.id, 'task', 'a', undefined, { x: 10, y: 20 })
    const b = await client.addComponent(p.id, 'task', 'b')
    expect(a.properties.pos).toEqual({ x: 10, y: 20 })
    await client.writeFile(p.id, 'a/run.sh', 'echo hi > out.txt\necho to-stdout\n')
    await client.writeFile(p.id, 'b/run.sh', 'cat in.txt > copy.txt\n')
    await client.setProperties(p.id, a.id, { script: 'run.sh', outputFiles: [{ name: 'out.txt', dst: [] }] })
    await client.setProperties(p.id, b.id, { script: 'run.sh' })
    await client.connectFiles(p.id, a.id, 'out.txt', b.id, 'in.txt')
    await client.connect(p.id, a.id, b.id)
    const got = await client.getProject(p.id)
    const kids = Object.fromEntries(got.workflow.children.map((c) => [c.name, c]))
    expect(kids.b.properties.inputFiles[0].name).toBe('in.txt')
    expect(kids.a.properties.next).toEqual([b.id])
    expect(await client.validate(p.id)).toEqual([])
    expect((await client.save(p.id, 'v1')).saved).toBe(true)

    expect((await client.run(p.id)).started).toBe(true)
    const s = await until(() => client.status(p.id), (x) => x.run?.state === 'finished' && x.engine_pid === null)
    expect(s.run.state).toBe('finished')
    expect(await client.readFile(p.id, 'b/copy.txt')).toBe('hi\n')
    expect(await client.log(p.id, 'a')).toBe('to-stdout\n')
    expect((await client.runs(p.id)).length).toBe(1)
    const list = await client.tasks(p.id)
    expect(list.run?.id).toBe(1)
    expect(list.rows.map((r) => [r.key, r.state, r.host]).sort()).toEqual([['a', 'finished', 'localhost'], ['b', 'finished', 'localhost']])
    expect(list.rows.every((r) => /^\d+$/.test(r.job_id ?? '') && r.started !== null)).toBe(true)
    expect((await client.tasks(p.id, 2).catch((x) => x)).status).toBe(404)
    const listing = await client.listFiles(p.id, 'a')
    expect(listing.entries?.map((e) => e.name)).toContain('out.txt')

    const up = await client.upload(p.id, 'a', [{ blob: new Blob(['data']), name: 'input.dat' }])
    expect(up.uploaded[0].path).toBe('a/input.dat')
    expect(await client.readFile(p.id, 'a/input.dat')).toBe('data')
  })

  it('turns a refusal into an ApiError naming the field', async () => {
    const p = await client.newProject('bad')
    const t = await client.addComponent(p.id, 'task', 't')
    const e = await client.setProperties(p.id, t.id, { retry: 'many' }).catch((x) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect(e.status).toBe(400)
    expect(e.message).toContain('retry')
    const v = await client.newProject('').catch((x) => x) // FastAPI's validation answer
    expect(v).toBeInstanceOf(ApiError)
    expect(v.status).toBe(422)
    expect(v.message).toMatch(/^name: /)
    const d = await client.deleteProject(p.id, 'wrong').catch((x) => x)
    expect(d.message).toContain('confirm=bad')
    expect((await client.deleteProject(p.id, 'bad')).deleted).toContain('bad.wheel')
    const gone = await client.getProject(p.id).catch((x) => x)
    expect(gone.status).toBe(404)
  })

  it('renames a project and gives its export and events URLs', async () => {
    const p = await client.newProject('before')
    const r = await client.renameProject(p.id, 'after')
    expect(r.name).toBe('after')
    expect(client.exportUrl(r.id)).toBe(`${client.base}/api/projects/${r.id}/export`)
    expect(client.eventsUrl(r.id)).toBe(`${client.base.replace('http', 'ws')}/api/projects/${r.id}/events`)
    expect(client.logFollowUrl(r.id, 'wf/a b', 'err')).toBe(
      `${client.base.replace('http', 'ws')}/api/projects/${r.id}/log-follow?key=wf%2Fa+b&stream=err`,
    )
    const res = await fetch(client.exportUrl(r.id), { headers: { Authorization: `Bearer ${client.token}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('gzip')
  })
})
