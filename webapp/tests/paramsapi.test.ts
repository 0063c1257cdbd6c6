// The parameter file's API methods against a real `sharin ui`, with the form's model: what the
// form writes the server takes, and the server's problems name the fields the form shows.
import { describe, expect, it } from 'vitest'
import { ApiError } from '../src/api'
import { useServer } from './server'
import { fromSetting, otherProblems, problemsAt, toSetting } from '../src/paramstudy'

const srv = useServer('ps')

describe('the parameter file through the client', () => {
  it('writes what the form makes and reads it back with its instance count', async () => {
    const p = await srv.client.newProject('ps')
    const ps = await srv.client.addComponent(p.id, 'parameterStudy', 'sweep')
    const inner = await srv.client.addComponent(p.id, 'task', 't', ps.id)
    const first = await srv.client.parameters(p.id, ps.id)
    expect(first.file).toBe('sweep/parameterSetting.json')
    expect(first.problems.map((x) => x.field)).toEqual(['params'])

    const form = fromSetting(first.setting)
    form.params.push({ keyword: 'x', kind: 'min-max-step', min: '0', max: '0.29', step: '0.01', list: [], files: [] })
    form.params.push({ keyword: 'y', kind: 'list', min: '', max: '', step: '', list: ['a', 'b'], files: [] })
    form.gather.push({ src: 'out.txt', dst: 'r/{{ x }}_{{ y }}', node: inner.id })
    const counted = await srv.client.putParameters(p.id, ps.id, toSetting(form), true)
    expect(counted.instances).toBe(60) // 30 values of x (exact decimals) times 2
    expect((await srv.client.parameters(p.id, ps.id)).setting.params).toEqual([]) // a dry run wrote nothing
    const saved = await srv.client.putParameters(p.id, ps.id, toSetting(form))
    expect(saved.instances).toBe(60)
    expect(fromSetting((await srv.client.parameters(p.id, ps.id)).setting)).toEqual(form)
  })

  it('gives the server’s problems with the fields the form shows them by', async () => {
    const p = await srv.client.newProject('bad-ps')
    const ps = await srv.client.addComponent(p.id, 'parameterStudy', 'sweep')
    const form = fromSetting({ version: 2, params: [{ keyword: 'k', type: 'list', list: ['a/b', 'a_b'] }] })
    const e = await srv.client.putParameters(p.id, ps.id, { ...toSetting(form), colour: 'red' }).catch((x) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect(e.status).toBe(400)
    const problems = e.problems as { field: string; message: string }[]
    expect(problemsAt(problems, 'params[0]')[0]).toContain('same instance directory name')
    expect(otherProblems(problems, form).map((x) => x.field)).toEqual(['colour'])
  })
})
