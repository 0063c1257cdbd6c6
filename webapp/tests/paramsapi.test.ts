// The parameter file's API methods against a real `sharin ui`, with the form's model: what the
// form writes the server takes, and the server's problems name the fields the form shows.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiError, Client } from '../src/api'
import { fromSetting, otherProblems, problemsAt, toSetting } from '../src/paramstudy'

let server: ChildProcess
let client: Client
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sharin-webapp-ps-'))
  server = spawn(process.env.SHARIN_PYTHON ?? 'python', ['-m', 'sharin', 'ui', '--no-browser', '--workspace', dir], {
    env: { ...process.env, SHARIN_CONFIG_DIR: join(dir, 'config') },
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

describe('the parameter file through the client', () => {
  it('writes what the form makes and reads it back with its instance count', async () => {
    const p = await client.newProject('ps')
    const ps = await client.addComponent(p.id, 'parameterStudy', 'sweep')
    const inner = await client.addComponent(p.id, 'task', 't', ps.id)
    const first = await client.parameters(p.id, ps.id)
    expect(first.file).toBe('sweep/parameterSetting.json')
    expect(first.problems.map((x) => x.field)).toEqual(['params'])

    const form = fromSetting(first.setting)
    form.params.push({ keyword: 'x', kind: 'min-max-step', min: '0', max: '0.29', step: '0.01', list: [], files: [] })
    form.params.push({ keyword: 'y', kind: 'list', min: '', max: '', step: '', list: ['a', 'b'], files: [] })
    form.gather.push({ src: 'out.txt', dst: 'r/{{ x }}_{{ y }}', node: inner.id })
    const counted = await client.putParameters(p.id, ps.id, toSetting(form), true)
    expect(counted.instances).toBe(60) // 30 values of x (exact decimals) times 2
    expect((await client.parameters(p.id, ps.id)).setting.params).toEqual([]) // a dry run wrote nothing
    const saved = await client.putParameters(p.id, ps.id, toSetting(form))
    expect(saved.instances).toBe(60)
    expect(fromSetting((await client.parameters(p.id, ps.id)).setting)).toEqual(form)
  })

  it('gives the server’s problems with the fields the form shows them by', async () => {
    const p = await client.newProject('bad-ps')
    const ps = await client.addComponent(p.id, 'parameterStudy', 'sweep')
    const form = fromSetting({ version: 2, params: [{ keyword: 'k', type: 'list', list: ['a/b', 'a_b'] }] })
    const e = await client.putParameters(p.id, ps.id, { ...toSetting(form), colour: 'red' }).catch((x) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect(e.status).toBe(400)
    const problems = e.problems as { field: string; message: string }[]
    expect(problemsAt(problems, 'params[0]')[0]).toContain('same instance directory name')
    expect(otherProblems(problems, form).map((x) => x.field)).toEqual(['colour'])
  })
})
