// The parameter study form's model: a parameter file (WHEEL's parameterSetting.json, version 2)
// turned into rows the form edits and back, the checks the browser can make (numbers, names)
// and the number of instances of range and list parameters. The server
// (src/sharin/model/_paramstudy.py) remains the judge: its problems name the same fields.

export type AxisKind = 'min-max-step' | 'list' | 'files'

export interface TargetRow {
  name: string
  node: string // a component ID below the study, '' for the study's own directory
}

export interface AxisRow {
  keyword: string
  kind: AxisKind
  min: string
  max: string
  step: string
  list: string[]
  files: string[]
}

export interface RuleRow {
  src: string
  dst: string
  node: string // scatter: dstNode, gather: srcNode ('' for the instance itself)
}

export interface StudyForm {
  targets: TargetRow[]
  params: AxisRow[]
  scatter: RuleRow[]
  gather: RuleRow[]
}

/** A problem as the server gives it: the file, the field (`params[0].step`) and what to do. */
export interface FieldProblem {
  file?: string
  field: string
  message: string
}

const KINDS: Record<string, AxisKind> = {
  'min-max-step': 'min-max-step',
  integer: 'min-max-step',
  float: 'min-max-step',
  list: 'list',
  string: 'list',
  files: 'files',
  file: 'files',
}

function given(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0)
}

function text(v: unknown): string {
  if (v === undefined || v === null) return ''
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v)
}

function texts(v: unknown): string[] {
  if (typeof v === 'string') return [v]
  return Array.isArray(v) ? v.map(text) : []
}

function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {}
}

function list(setting: Record<string, unknown>, key: string, legacy?: string): unknown[] {
  const v = key in setting || legacy === undefined ? setting[key] : setting[legacy]
  if (typeof v === 'string') return [v]
  return Array.isArray(v) ? v : []
}

/** The form's rows of a parameter file's JSON (WHEEL's legacy names `target_file` and
 * `target_param`, and a string where a list goes, are read too). */
export function fromSetting(setting: Record<string, unknown>): StudyForm {
  const targets = list(setting, 'targetFiles', 'target_file').map((t) =>
    typeof t === 'string' ? { name: t, node: '' } : { name: text(obj(t).targetName), node: text(obj(t).targetNode) },
  )
  const params = list(setting, 'params', 'target_param').map((raw): AxisRow => {
    const p = obj(raw)
    let kind: AxisKind = KINDS[text(p.type)] ?? 'min-max-step'
    if (!(text(p.type) in KINDS)) {
      if (['min', 'max', 'step'].every((k) => given(p[k]))) kind = 'min-max-step'
      else if (given(p.list)) kind = 'list'
      else if (given(p.files)) kind = 'files'
    }
    return { keyword: text(p.keyword), kind, min: text(p.min), max: text(p.max), step: text(p.step), list: texts(p.list), files: texts(p.files) }
  })
  const rules = (key: 'scatter' | 'gather', node: string) =>
    list(setting, key).map((raw) => {
      const r = obj(raw)
      return { src: text(r.srcName), dst: text(r.dstName), node: text(r[node]) }
    })
  return { targets, params, scatter: rules('scatter', 'dstNode'), gather: rules('gather', 'srcNode') }
}

/** A number as typed, or null when it is not one (JSON has no NaN nor Infinity). */
export function parseNumber(s: string): number | null {
  const t = s.trim()
  if (t === '' || !/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(t)) return null
  const n = Number(t)
  return Number.isFinite(n) ? n : null
}

/** The parameter file's JSON of the form, in WHEEL's form (`type` on every parameter, as
 * WHEEL's editor writes it). A number typed as text that is no number is sent as typed, for
 * the server to name. */
export function toSetting(form: StudyForm): Record<string, unknown> {
  const num = (s: string) => parseNumber(s) ?? s
  return {
    version: 2,
    targetFiles: form.targets.map((t) => (t.node ? { targetName: t.name, targetNode: t.node } : { targetName: t.name })),
    params: form.params.map((p) => {
      if (p.kind === 'min-max-step') return { keyword: p.keyword, type: p.kind, min: num(p.min), max: num(p.max), step: num(p.step) }
      if (p.kind === 'list') return { keyword: p.keyword, type: p.kind, list: [...p.list] }
      return { keyword: p.keyword, type: p.kind, files: [...p.files] }
    }),
    scatter: form.scatter.map((r) => (r.node ? { srcName: r.src, dstName: r.dst, dstNode: r.node } : { srcName: r.src, dstName: r.dst })),
    gather: form.gather.map((r) => (r.node ? { srcName: r.src, dstName: r.dst, srcNode: r.node } : { srcName: r.src, dstName: r.dst })),
  }
}

// ---------------------------------------------------------------- exact range sizes

/** `n` as an exact decimal: `digits * 10**-scale` (0.15 → 15n, 2; 1e21 → 10n**21n, 0). */
function decimal(n: number): { digits: bigint; scale: number } {
  const [mantissa, exp = '0'] = String(n).toLowerCase().split('e')
  const negative = mantissa.startsWith('-')
  const [whole, frac = ''] = mantissa.replace('-', '').split('.')
  let digits = BigInt(whole + frac)
  let scale = frac.length - Number(exp)
  if (scale < 0) {
    digits *= 10n ** BigInt(-scale)
    scale = 0
  }
  while (scale > 0 && digits % 10n === 0n) {
    digits /= 10n
    scale -= 1
  }
  return { digits: negative ? -digits : digits, scale }
}

/** How many values `min .. max` by `step` has (both ends included), computed exactly as the
 * server does; null when the range is not one (a step of 0, or pointing away from max). */
export function rangeSize(min: number, max: number, step: number): number | null {
  const [a, b, s] = [decimal(min), decimal(max), decimal(step)]
  const scale = Math.max(a.scale, b.scale, s.scale)
  const up = (d: { digits: bigint; scale: number }) => d.digits * 10n ** BigInt(scale - d.scale)
  const [lo, hi, st] = [up(a), up(b), up(s)]
  if (st === 0n || (hi - lo) * st < 0n) return null
  return Number((hi - lo) / st) + 1
}

/** The number of instances (the product of the parameters' sizes), or null when the browser
 * cannot tell: a files parameter (its matches are known to the server) or a parameter in error. */
export function instanceCount(form: StudyForm): number | null {
  if (!form.params.length) return null
  let n = 1
  for (const p of form.params) {
    if (p.kind === 'files') return null
    let size: number | null
    if (p.kind === 'list') size = p.list.length || null
    else {
      const [lo, hi, st] = [parseNumber(p.min), parseNumber(p.max), parseNumber(p.step)]
      size = lo === null || hi === null || st === null ? null : rangeSize(lo, hi, st)
    }
    if (size === null) return null
    n *= size
  }
  return n
}

// ---------------------------------------------------------------- checks

const KEYWORD = /^[A-Za-z_][A-Za-z0-9_]*$/
const TEMPLATE_WORDS = new Set(
  'and or not in is if else elif for endfor true false none True False None block extends import include macro set with without recursive loop self'.split(' '),
)

/** What is wrong with a file name the study gives (relative to its directory). */
export function nameProblem(name: string, emptyOk = false): string | null {
  if (!name.trim()) return emptyOk ? null : 'give a file name'
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) return 'must be relative to the study’s directory'
  if (name.split(/[\\/]/).includes('..')) return 'must stay inside the study’s directory (no ..)'
  if (name.includes('\0')) return 'must not hold a NUL character'
  return null
}

/** The problems the browser finds, named by the fields the server names. */
export function formProblems(form: StudyForm, bulk = false): FieldProblem[] {
  const out: FieldProblem[] = []
  const add = (field: string, message: string) => out.push({ field, message })
  const seenTargets = new Set<string>()
  form.targets.forEach((t, i) => {
    const problem = nameProblem(t.name)
    if (problem) add(`targetFiles[${i}].targetName`, problem)
    const key = `${t.node}/${t.name}`
    if (!problem && seenTargets.has(key)) add(`targetFiles[${i}].targetName`, `${t.name} is a target file already`)
    seenTargets.add(key)
  })
  if (!form.params.length) add('params', 'add a parameter: a study needs at least one')
  const seen = new Map<string, number>()
  form.params.forEach((p, i) => {
    const at = `params[${i}]`
    if (!p.keyword.trim()) add(`${at}.keyword`, 'give the placeholder’s name')
    else if (!KEYWORD.test(p.keyword) || TEMPLATE_WORDS.has(p.keyword))
      add(`${at}.keyword`, 'use letters, digits and _, not starting with a digit, and not a template word such as if')
    else if (seen.has(p.keyword)) add(`${at}.keyword`, `${p.keyword} is already the keyword of params[${seen.get(p.keyword)}]`)
    else seen.set(p.keyword, i)
    if (p.kind === 'min-max-step') {
      const values = { min: parseNumber(p.min), max: parseNumber(p.max), step: parseNumber(p.step) }
      for (const [k, v] of Object.entries(values)) if (v === null) add(`${at}.${k}`, 'must be a number')
      const { min, max, step } = values
      if (step === 0) add(`${at}.step`, 'must not be 0')
      else if (min !== null && max !== null && step !== null && rangeSize(min, max, step) === null)
        add(`${at}.step`, `is ${step} but max is ${step > 0 ? 'smaller' : 'larger'} than min, so the range is empty`)
    } else if (p.kind === 'list') {
      if (!p.list.length) add(`${at}.list`, 'give at least one value')
      const values = new Set<string>()
      p.list.forEach((v, j) => {
        if (values.has(v)) add(`${at}.list[${j}]`, `${JSON.stringify(v)} appears twice`)
        values.add(v)
      })
    } else {
      if (!p.files.length) add(`${at}.files`, 'give at least one glob pattern')
      p.files.forEach((f, j) => {
        const problem = nameProblem(f)
        if (problem) add(`${at}.files[${j}]`, problem)
      })
    }
  })
  for (const key of ['scatter', 'gather'] as const) {
    if (bulk && form[key].length) add(key, `a bulkjobTask has no ${key}; remove the rules`)
    form[key].forEach((r, i) => {
      const src = nameProblem(r.src)
      if (src) add(`${key}[${i}].srcName`, src)
      const dst = nameProblem(r.dst, true)
      if (dst) add(`${key}[${i}].dstName`, dst)
    })
  }
  if (bulk) form.targets.forEach((t, i) => t.node && add(`targetFiles[${i}].targetNode`, 'a bulkjobTask renders its target files in its own directory'))
  return out
}

/** The messages of the problems at `field` or inside it (`params[0]` has `params[0].step`). */
export function problemsAt(problems: FieldProblem[], field: string): string[] {
  return problems
    .filter((p) => p.field === field || p.field.startsWith(`${field}.`) || p.field.startsWith(`${field}[`))
    .map((p) => (p.field === field ? p.message : `${p.field.slice(field.length).replace(/^\./, '')}: ${p.message}`))
}

/** The problems no row of the form shows (a field of the file the form does not edit). */
export function otherProblems(problems: FieldProblem[], form: StudyForm): FieldProblem[] {
  const rows = [
    ...form.targets.map((_, i) => `targetFiles[${i}]`),
    ...form.params.map((_, i) => `params[${i}]`),
    ...form.scatter.map((_, i) => `scatter[${i}]`),
    ...form.gather.map((_, i) => `gather[${i}]`),
  ]
  const sections = ['targetFiles', 'params', 'scatter', 'gather']
  return problems.filter((p) => !sections.includes(p.field) && !rows.some((r) => problemsAt([p], r).length))
}

export function emptyAxis(): AxisRow {
  return { keyword: '', kind: 'min-max-step', min: '1', max: '1', step: '1', list: [], files: [] }
}
