// The client of sharin's server API (src/sharin/interfaces/server/_app.py).
//
// In the browser the token travels in the HttpOnly cookie the server set when the page was first
// opened with `?token=`; other callers (tests, scripts) pass the token and it goes in a header.

export interface Component {
  id: string
  name: string
  type: string
  path: string
  state: string
  properties: Record<string, any>
  children: Component[]
}

export interface ProjectSummary {
  id: string
  name: string
  root: string
  state: string
  error?: string
}

export interface Project extends ProjectSummary {
  description: string
  workflow: Component
}

export interface FileEntry {
  name: string
  type: 'file' | 'dir' | 'link'
  size: number
  mtime: number
}

export interface Listing {
  path: string
  type: string
  entries?: FileEntry[]
  size?: number
}

export interface RunEvent {
  run: number
  key: string
  kind: string
  state: string
  attempt: number
  returncode: number | null
  message: string
  time: number
}

/** A host of remotehost.json (`config`, with sharin's field names) and the file it is in. */
export interface Host {
  config: {
    name: string
    host: string
    user: string | null
    port: number
    path: string
    job_scheduler: string | null
    queues: string[]
    [key: string]: any
  }
  file: string
}

/** A parameter study's (or bulk job's) parameter file: `setting` as written (WHEEL's form),
 * the instances it makes (null when unknown), what is wrong with it and with the files it names. */
export interface ParameterFile {
  component: string
  type: string
  file: string // its path in the project
  exists: boolean
  used: boolean // false for a bulkjobTask whose usePSSettingFile is off
  setting: Record<string, unknown>
  instances: number | null
  problems: { file: string; field: string; message: string }[]
  warnings: { file: string; field: string; message: string }[]
}

/** One run of the project, as `sharin runs` lists it; `tasks` counts its tasks by state. */
export interface RunInfo {
  id: number
  started: number
  ended: number | null
  state: string
  pid: number | null
  info: Record<string, any>
  tasks?: Record<string, number>
}

/** An answer of the server other than success: its message, as the server wrote it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems: unknown[] = [],
    readonly data: any = null, // the answer's JSON body, when it had one
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

export interface ClientOptions {
  base?: string // e.g. "http://127.0.0.1:8000" (default: the page's own origin)
  token?: string // sent as `Authorization: Bearer` (default: none, the cookie is used)
  fetch?: typeof fetch
  clientId?: string // sent as `X-Sharin-Client`: the edits it makes come back marked as its own
}

function explain(status: number, body: any, fallback: string): string {
  if (body && typeof body.error === 'string') return body.error
  if (body && Array.isArray(body.detail)) {
    // FastAPI's validation answer: say which field and why
    return body.detail
      .map((d: any) => `${(d.loc ?? []).filter((x: any) => x !== 'body').join('.')}: ${d.msg}`)
      .join('; ')
  }
  if (body && typeof body.detail === 'string') return body.detail
  return `${fallback} (HTTP ${status})`
}

export class Client {
  readonly base: string
  readonly token?: string
  readonly clientId: string
  private readonly doFetch: typeof fetch

  constructor(options: ClientOptions = {}) {
    this.base = (options.base ?? '').replace(/\/$/, '')
    this.token = options.token
    this.clientId = options.clientId ?? Math.random().toString(36).slice(2, 14)
    const f = options.fetch ?? globalThis.fetch
    this.doFetch = f.bind(globalThis)
  }

  url(path: string, query: Record<string, string | number | boolean | undefined> = {}): string {
    const q = new URLSearchParams()
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v))
    const s = q.toString()
    return `${this.base}${path}${s ? `?${s}` : ''}`
  }

  /** The WebSocket URL of a project's live events. */
  eventsUrl(pid: string): string {
    const base = this.base || globalThis.location?.origin || ''
    return `${base.replace(/^http/, 'ws')}/api/projects/${pid}/events`
  }

  async request(method: string, path: string, init: {
    query?: Record<string, string | number | boolean | undefined>
    json?: unknown
    body?: BodyInit
  } = {}): Promise<Response> {
    const headers: Record<string, string> = {}
    if (this.token) headers['Authorization'] = `Bearer ${this.token}`
    headers['X-Sharin-Client'] = this.clientId
    let body = init.body
    if (init.json !== undefined) {
      headers['Content-Type'] = 'application/json'
      body = JSON.stringify(init.json)
    }
    const r = await this.doFetch(this.url(path, init.query), {
      method,
      headers,
      body,
      credentials: 'same-origin',
    })
    if (!r.ok) {
      let data: any = null
      try {
        data = await r.json()
      } catch {
        data = null
      }
      throw new ApiError(r.status, explain(r.status, data, `${method} ${path} failed`), data?.problems ?? [], data)
    }
    return r
  }

  private async json<T>(method: string, path: string, init: Parameters<Client['request']>[2] = {}): Promise<T> {
    return (await (await this.request(method, path, init)).json()) as T
  }

  private async text(path: string, query: Record<string, string | number | undefined> = {}): Promise<string> {
    return await (await this.request('GET', path, { query })).text()
  }

  // -------------------------------------------------------------- projects
  listProjects(): Promise<ProjectSummary[]> {
    return this.json('GET', '/api/projects')
  }
  newProject(name: string, description = ''): Promise<Project> {
    return this.json('POST', '/api/projects', { json: { name, description } })
  }
  openProject(path: string): Promise<Project> {
    return this.json('POST', '/api/projects/open', { json: { path } })
  }
  /** Import a WHEEL archive. When it uses host labels this machine does not know and
   * `hostMap` does not map them all, the server answers 409: an ApiError whose `data` has
   * `unknown_hosts` and the `hosts` to choose from (see hosts.ts). */
  importArchive(file: Blob, filename: string, hostMap?: Record<string, string>): Promise<Project> {
    const form = new FormData()
    form.append('archive', file, filename)
    if (hostMap) form.append('host_map', JSON.stringify(hostMap))
    return this.json('POST', '/api/projects/import', { body: form })
  }
  exportUrl(pid: string): string {
    return this.url(`/api/projects/${pid}/export`)
  }
  getProject(pid: string): Promise<Project> {
    return this.json('GET', `/api/projects/${pid}`)
  }
  renameProject(pid: string, name: string): Promise<Project> {
    return this.json('POST', `/api/projects/${pid}/rename`, { json: { name } })
  }
  deleteProject(pid: string, confirm: string): Promise<{ deleted: string }> {
    return this.json('DELETE', `/api/projects/${pid}`, { query: { confirm } })
  }

  // -------------------------------------------------------------- components and edges
  addComponent(pid: string, type: string, name: string, parent?: string, pos?: { x: number; y: number }): Promise<Component> {
    return this.json('POST', `/api/projects/${pid}/components`, { json: { type, name, parent: parent ?? null, pos: pos ?? null } })
  }
  getComponent(pid: string, cid: string): Promise<Component> {
    return this.json('GET', `/api/projects/${pid}/components/${cid}`)
  }
  setProperties(pid: string, cid: string, properties: Record<string, unknown>): Promise<Component> {
    return this.json('PATCH', `/api/projects/${pid}/components/${cid}`, { json: { properties } })
  }
  removeComponent(pid: string, cid: string, confirm = false): Promise<unknown> {
    return this.json('DELETE', `/api/projects/${pid}/components/${cid}`, { query: { confirm } })
  }
  connect(pid: string, src: string, dst: string, isElse = false): Promise<unknown> {
    return this.json('POST', `/api/projects/${pid}/links`, { json: { src, dst, else: isElse } })
  }
  disconnect(pid: string, src: string, dst: string, isElse = false): Promise<unknown> {
    return this.json('DELETE', `/api/projects/${pid}/links`, { query: { src, dst, else: isElse } })
  }
  connectFiles(pid: string, src: string, srcName: string, dst: string, dstName: string): Promise<unknown> {
    return this.json('POST', `/api/projects/${pid}/file-links`, { json: { src, src_name: srcName, dst, dst_name: dstName } })
  }
  disconnectFiles(pid: string, src: string, srcName: string, dst: string, dstName: string): Promise<unknown> {
    return this.json('DELETE', `/api/projects/${pid}/file-links`, { query: { src, src_name: srcName, dst, dst_name: dstName } })
  }
  validate(pid: string): Promise<Record<string, any>[]> {
    return this.json('GET', `/api/projects/${pid}/validate`)
  }

  // -------------------------------------------------------------- parameter files
  parameters(pid: string, cid: string): Promise<ParameterFile> {
    return this.json('GET', `/api/projects/${pid}/components/${cid}/parameters`)
  }
  /** Write the parameter file (`dryRun`: only check it and count the instances); a 400's
   * `problems` name the fields. */
  putParameters(pid: string, cid: string, setting: Record<string, unknown>, dryRun = false): Promise<ParameterFile> {
    return this.json('PUT', `/api/projects/${pid}/components/${cid}/parameters`, { json: setting, query: { dry_run: dryRun || undefined } })
  }

  // -------------------------------------------------------------- versions and runs
  save(pid: string, message = 'save project'): Promise<{ saved: boolean }> {
    return this.json('POST', `/api/projects/${pid}/save`, { json: { message } })
  }
  revert(pid: string): Promise<{ reverted: string[] }> {
    return this.json('POST', `/api/projects/${pid}/revert`)
  }
  unsaved(pid: string): Promise<{ unsaved: string[] }> {
    return this.json('GET', `/api/projects/${pid}/unsaved`)
  }
  clean(pid: string, component?: string, unsaved: 'refuse' | 'keep' | 'discard' = 'refuse'): Promise<unknown> {
    return this.json('POST', `/api/projects/${pid}/clean`, { json: { component: component ?? null, unsaved } })
  }
  run(pid: string, options: { restart?: boolean; keep_going?: boolean } = {}): Promise<{ started: boolean }> {
    return this.json('POST', `/api/projects/${pid}/run`, { json: options })
  }
  stop(pid: string): Promise<{ stopped: boolean }> {
    return this.json('POST', `/api/projects/${pid}/stop`)
  }
  status(pid: string): Promise<Record<string, any>> {
    return this.json('GET', `/api/projects/${pid}/status`)
  }
  runs(pid: string): Promise<Record<string, any>[]> {
    return this.json('GET', `/api/projects/${pid}/runs`)
  }
  /** The list view's rows: every component, loop trip and parameter-study instance of a run
   * (default: the last) with state, host, job id and times. */
  tasks(pid: string, run?: number): Promise<import('./rows').TaskList> {
    return this.json('GET', `/api/projects/${pid}/tasks`, { query: { run } })
  }
  log(pid: string, key: string, stream: 'out' | 'err' = 'out'): Promise<string> {
    return this.text(`/api/projects/${pid}/logs/${key.split('/').map(encodeURIComponent).join('/')}`, { stream })
  }
  /** The WebSocket URL that sends a task's stdout (or stderr) as it grows, then `end`. */
  logFollowUrl(pid: string, key: string, stream: 'out' | 'err' = 'out'): string {
    const q = new URLSearchParams({ key, stream }).toString()
    return `${this.eventsUrl(pid).replace(/\/events$/, '/log-follow')}?${q}`
  }
  /** The images a viewer component shows, as paths in the project. */
  viewerImages(pid: string, cid: string): Promise<{ images: string[] }> {
    return this.json('GET', `/api/projects/${pid}/viewer/${cid}`)
  }
  engineLog(pid: string): Promise<string> {
    return this.text(`/api/projects/${pid}/engine-log`)
  }

  // -------------------------------------------------------------- files
  listFiles(pid: string, path = ''): Promise<Listing> {
    return this.json('GET', `/api/projects/${pid}/files`, { query: { path } })
  }
  readFile(pid: string, path: string): Promise<string> {
    return this.text(`/api/projects/${pid}/files/content`, { path })
  }
  fileUrl(pid: string, path: string): string {
    return this.url(`/api/projects/${pid}/files/content`, { path })
  }
  writeFile(pid: string, path: string, text: string): Promise<{ path: string; size: number }> {
    return this.json('PUT', `/api/projects/${pid}/files/content`, { query: { path }, body: text })
  }
  upload(pid: string, path: string, files: { blob: Blob; name: string }[]): Promise<{ uploaded: { path: string; size: number }[] }> {
    const form = new FormData()
    for (const f of files) form.append('files', f.blob, f.name)
    return this.json('POST', `/api/projects/${pid}/files/upload`, { query: { path }, body: form })
  }

  // -------------------------------------------------------------- hosts
  hosts(): Promise<Host[]> {
    return this.json('GET', '/api/hosts')
  }
  /** Add a host: a remotehost.json entry with WHEEL's field names (name, host, user, port,
   * path, keyFile, jobScheduler, queue …). */
  addHost(entry: Record<string, unknown>): Promise<{ name: string }> {
    return this.json('POST', '/api/hosts', { json: entry })
  }
  /** Replace a host's entry (WHEEL's field names, as for addHost); `entry.name` may rename it. */
  replaceHost(name: string, entry: Record<string, unknown>): Promise<{ name: string }> {
    return this.json('PUT', `/api/hosts/${encodeURIComponent(name)}`, { json: entry })
  }
  /** The WebSocket URL that tests a host (see hosts.ts's testHost). */
  hostTestUrl(name: string): string {
    const base = this.base || globalThis.location?.origin || ''
    return `${base.replace(/^http/, 'ws')}/api/hosts/${encodeURIComponent(name)}/test`
  }
  removeHost(name: string): Promise<{ removed: string }> {
    return this.json('DELETE', `/api/hosts/${encodeURIComponent(name)}`)
  }
}
