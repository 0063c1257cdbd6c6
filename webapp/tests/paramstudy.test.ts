import { describe, expect, it } from 'vitest'
import { emptyAxis, formProblems, fromSetting, instanceCount, otherProblems, parseNumber, problemsAt, rangeSize, toSetting, type StudyForm } from '../src/paramstudy'

const WHEEL = {
  version: 2,
  targetFiles: ['input.txt', { targetNode: 'id-task', targetName: 'run.sh' }],
  params: [
    { keyword: 'n', type: 'integer', min: 1, max: 3, step: 1 },
    { keyword: 'mode', list: ['fast', 'slow'] },
    { keyword: 'data', type: 'files', files: 'data_*', list: ['stale'] },
  ],
  scatter: [{ srcName: 'mesh', dstName: 'mesh{{ n }}', dstNode: 'id-task', dstNodeName: './task' }],
  gather: [{ srcName: 'out.txt', srcNode: 'id-task', dstName: 'results/{{ n }}' }],
}

function form(): StudyForm {
  return fromSetting(JSON.parse(JSON.stringify(WHEEL)))
}

describe('the parameter file in the form', () => {
  it('reads WHEEL’s fields, strings for lists and the type that decides', () => {
    const f = form()
    expect(f.targets).toEqual([{ name: 'input.txt', node: '' }, { name: 'run.sh', node: 'id-task' }])
    expect(f.params.map((p) => p.kind)).toEqual(['min-max-step', 'list', 'files'])
    expect(f.params[0]).toMatchObject({ min: '1', max: '3', step: '1' })
    expect(f.params[2].files).toEqual(['data_*'])
    expect(f.scatter).toEqual([{ src: 'mesh', dst: 'mesh{{ n }}', node: 'id-task' }])
    expect(f.gather).toEqual([{ src: 'out.txt', dst: 'results/{{ n }}', node: 'id-task' }])
  })

  it('reads the legacy names target_file and target_param', () => {
    const f = fromSetting({ version: 2, target_file: 'a.txt', target_param: [{ keyword: 'k', min: 0, max: 1, step: 0.5 }] })
    expect(f.targets).toEqual([{ name: 'a.txt', node: '' }])
    expect(f.params[0]).toMatchObject({ keyword: 'k', kind: 'min-max-step', step: '0.5' })
  })

  it('writes WHEEL’s form: numbers as numbers, a type on each parameter, no stale fields', () => {
    const s = toSetting(form())
    expect(s).toEqual({
      version: 2,
      targetFiles: [{ targetName: 'input.txt' }, { targetName: 'run.sh', targetNode: 'id-task' }],
      params: [
        { keyword: 'n', type: 'min-max-step', min: 1, max: 3, step: 1 },
        { keyword: 'mode', type: 'list', list: ['fast', 'slow'] },
        { keyword: 'data', type: 'files', files: ['data_*'] },
      ],
      scatter: [{ srcName: 'mesh', dstName: 'mesh{{ n }}', dstNode: 'id-task' }],
      gather: [{ srcName: 'out.txt', dstName: 'results/{{ n }}', srcNode: 'id-task' }],
    })
    // what was read back is what was written
    expect(toSetting(fromSetting(s))).toEqual(s)
  })

  it('sends a number that is none as typed, for the server to name', () => {
    const f = form()
    f.params[0].step = 'two'
    expect((toSetting(f).params as any[])[0].step).toBe('two')
  })
})

describe('numbers and sizes', () => {
  it('parses only numbers JSON can carry', () => {
    expect(parseNumber(' 2.5 ')).toBe(2.5)
    expect(parseNumber('-1e-3')).toBe(-0.001)
    expect(parseNumber('.5')).toBe(0.5)
    for (const bad of ['', 'abc', '1,5', 'Infinity', 'NaN', '0x10', '1e999', '1.2.3']) expect(parseNumber(bad)).toBeNull()
  })

  it('counts a range exactly, as the server does, where floats would lose the last value', () => {
    expect(rangeSize(1, 3, 1)).toBe(3)
    expect(rangeSize(0, 0.29, 0.01)).toBe(30)
    expect(rangeSize(0.15, 0.45, 0.15)).toBe(3)
    expect(rangeSize(5, 1, -2)).toBe(3)
    expect(rangeSize(1, 1, 1)).toBe(1)
    expect(rangeSize(0, 1e-6, 1e-7)).toBe(11)
    expect(rangeSize(0, 1e21, 1e20)).toBe(11)
    expect(rangeSize(1, 3, 0)).toBeNull()
    expect(rangeSize(3, 1, 1)).toBeNull()
  })

  it('counts the instances of ranges and lists, and leaves files to the server', () => {
    const f = form()
    expect(instanceCount(f)).toBeNull() // a files parameter
    f.params.pop()
    expect(instanceCount(f)).toBe(6)
    f.params[0].max = '10'
    expect(instanceCount(f)).toBe(20)
    f.params[0].step = '0'
    expect(instanceCount(f)).toBeNull()
    expect(instanceCount({ targets: [], params: [], scatter: [], gather: [] })).toBeNull()
  })
})

describe('the checks the browser makes', () => {
  it('finds nothing wrong with a good study', () => {
    expect(formProblems(form())).toEqual([])
  })

  it('names each field as the server does', () => {
    const f = form()
    f.targets.push({ name: '../secret', node: '' }, { name: 'input.txt', node: '' })
    f.params[0].step = '0'
    f.params[1].keyword = 'n'
    f.params[1].list = ['a', 'a']
    f.params.push({ ...emptyAxis(), keyword: 'if', min: 'x', max: '1', step: '-1' })
    f.params.push({ ...emptyAxis(), keyword: 'down', min: '1', max: '5', step: '-1' })
    f.scatter[0].src = ''
    f.gather[0].dst = '/abs'
    const fields = formProblems(f).map((p) => p.field)
    expect(fields).toEqual([
      'targetFiles[2].targetName',
      'targetFiles[3].targetName',
      'params[0].step',
      'params[1].keyword',
      'params[1].list[1]',
      'params[3].keyword',
      'params[3].min',
      'params[4].step',
      'scatter[0].srcName',
      'gather[0].dstName',
    ])
  })

  it('needs a parameter, and a bulk job has no scatter, gather nor target nodes', () => {
    const f = form()
    f.params = []
    expect(formProblems(f).map((p) => p.field)).toEqual(['params'])
    expect(formProblems(form(), true).map((p) => p.field)).toEqual(['scatter', 'gather', 'targetFiles[1].targetNode'])
  })

  it('shows each problem by its row and keeps the others apart', () => {
    const problems = [
      { field: 'params[0].step', message: 'must not be 0' },
      { field: 'params[1]', message: 'needs min, max and step, or list, or files' },
      { field: 'params[10].keyword', message: 'later row' },
      { field: 'extra', message: 'unknown field' },
    ]
    expect(problemsAt(problems, 'params[0]')).toEqual(['step: must not be 0'])
    expect(problemsAt(problems, 'params[1]')).toEqual(['needs min, max and step, or list, or files'])
    expect(otherProblems(problems, form()).map((p) => p.field)).toEqual(['params[10].keyword', 'extra'])
  })
})
