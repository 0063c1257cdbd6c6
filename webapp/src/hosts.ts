// The hosts screen's logic: the host form (a remotehost.json entry, WHEEL's field names), the
// connection test over the server's WebSocket, and the host mapping of an archive's import.

export type FieldKind = 'text' | 'number' | 'flag' | 'host' // host: another host's label

export interface HostField {
  key: string // the remotehost.json field
  label: string
  kind: FieldKind
  placeholder?: string
  required?: boolean
}

/** Every field of WHEEL's host form that sharin reads (model/_hosts.py), in the form's order. */
export const HOST_FIELDS: HostField[] = [
  { key: 'name', label: 'Label', kind: 'text', placeholder: 'cluster', required: true },
  { key: 'host', label: 'Host name', kind: 'text', placeholder: 'login.example.org', required: true },
  { key: 'user', label: 'User', kind: 'text' },
  { key: 'port', label: 'Port', kind: 'number', placeholder: '22' },
  { key: 'path', label: 'Working directory on the host', kind: 'text', placeholder: '/home/me/wheel' },
  { key: 'keyFile', label: 'Key file', kind: 'text', placeholder: '~/.ssh/id_ed25519' },
  { key: 'jobScheduler', label: 'Job scheduler', kind: 'text', placeholder: 'Slurm, PBSPro, Fugaku …' },
  { key: 'queue', label: 'Queues (comma separated)', kind: 'text' },
  { key: 'numJob', label: 'Jobs at once (numJob)', kind: 'number', placeholder: '5' },
  { key: 'sharedHost', label: 'Shares its files with host', kind: 'host' },
  { key: 'statusCheckInterval', label: 'Status check interval (s)', kind: 'number', placeholder: '10' },
  { key: 'maxStatusCheckError', label: 'Status check failures allowed', kind: 'number' },
  { key: 'renewInterval', label: 'Renew the connection after (min)', kind: 'number', placeholder: '0: never' },
  { key: 'readyTimeout', label: 'Connection timeout (ms)', kind: 'number', placeholder: '20000' },
  { key: 'keepaliveInterval', label: 'Keep-alive interval (ms)', kind: 'number', placeholder: '30000' },
  { key: 'knownHostsFile', label: 'known_hosts file', kind: 'text', placeholder: '~/.ssh/known_hosts' },
  { key: 'useStepjob', label: 'Step jobs', kind: 'flag' },
  { key: 'useBulkjob', label: 'Bulk jobs', kind: 'flag' },
]

export type HostForm = Record<string, string | boolean>

export function emptyForm(): HostForm {
  const f: HostForm = {}
  for (const d of HOST_FIELDS) f[d.key] = d.kind === 'flag' ? false : ''
  return f
}

/** The form filled with an entry (its raw remotehost.json fields). */
export function formFromEntry(raw: Record<string, unknown>): HostForm {
  const f = emptyForm()
  for (const d of HOST_FIELDS) {
    let v = raw[d.key]
    if (d.key === 'user' && (v === undefined || v === null || v === '')) v = raw.username // WHEEL 2022
    if (d.kind === 'flag') f[d.key] = v === true || v === 'true'
    else if (Array.isArray(v)) f[d.key] = v.join(', ')
    else f[d.key] = v === undefined || v === null ? '' : String(v)
  }
  return f
}

/** The entry to send: `base`'s fields (an edited entry's id and fields the form does not show)
 * with the form's; an emptied field is left out. A number field that does not read as a number
 * is sent as typed, for the server to name it. */
export function entryFromForm(form: HostForm, base: Record<string, unknown> = {}): Record<string, unknown> {
  const entry: Record<string, unknown> = { ...base }
  // WHEEL 2022 calls the user `username`: an entry written so keeps that name
  const userKey = 'username' in base && !('user' in base) ? 'username' : 'user'
  for (const d of HOST_FIELDS) {
    const v = form[d.key]
    const key = d.key === 'user' ? userKey : d.key
    delete entry[key]
    if (d.kind === 'flag') {
      if (v === true) entry[d.key] = true
      else if (base[d.key] !== undefined) entry[d.key] = false
      continue
    }
    const s = String(v ?? '').trim()
    if (!s) continue
    if (d.kind === 'number') entry[key] = /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : s
    else if (d.key === 'queue' && Array.isArray(base.queue)) {
      entry[key] = s.split(',').map((q) => q.trim()).filter(Boolean) // OPEN-WHEEL 2025's list
    } else entry[key] = s
  }
  return entry
}

// ------------------------------------------------------------------ the connection test
export interface HostCheckResult {
  host: string
  where: string
  round_trip: number
  connect_time: number
  commands: Record<string, string>
}

export type TestOutcome =
  | { kind: 'result'; result: HostCheckResult }
  | { kind: 'error'; error: string }
  | { kind: 'cancelled' }

/** One line for the row: the round trip and the scheduler commands found, or the error. */
export function outcomeText(o: TestOutcome): string {
  if (o.kind === 'cancelled') return 'test cancelled'
  if (o.kind === 'error') return o.error
  const found = Object.keys(o.result.commands)
  const ms = (s: number) => `${Math.round(s * 1000)} ms`
  return (
    `connected in ${ms(o.result.connect_time)}, round trip ${ms(o.result.round_trip)}; ` +
    (found.length ? `scheduler commands: ${found.join(', ')}` : 'no scheduler commands found')
  )
}

/** Tests a host over `url` (the server's `/api/hosts/{name}/test`): each `ask` of the server
 * is put to `ask` (null, the user's Cancel, closes the socket); resolves to what came of it. */
export function testHost(
  url: string,
  ask: (prompt: string, echo: boolean) => Promise<string | null>,
  WS: typeof WebSocket = WebSocket,
): Promise<TestOutcome> {
  return new Promise((resolve) => {
    let done = false
    const ws = new WS(url)
    const finish = (o: TestOutcome) => {
      if (done) return
      done = true
      resolve(o)
      ws.close()
    }
    ws.onmessage = async (m) => {
      let msg: any
      try {
        msg = JSON.parse(String(m.data))
      } catch {
        return finish({ kind: 'error', error: 'the server sent something that is not JSON' })
      }
      if (msg.type === 'ask') {
        const answer = await ask(String(msg.prompt ?? ''), msg.echo === true)
        if (answer === null) finish({ kind: 'cancelled' })
        else if (!done) ws.send(JSON.stringify({ type: 'answer', text: answer }))
      } else if (msg.type === 'result') {
        const { type: _, ...result } = msg
        finish({ kind: 'result', result: result as HostCheckResult })
      } else if (msg.type === 'error') {
        finish({ kind: 'error', error: String(msg.error ?? 'the test failed') })
      }
    }
    ws.onclose = () => finish({ kind: 'error', error: 'the connection to the server closed before the test ended' })
  })
}

// ------------------------------------------------------------------ an import's host mapping
/** What the server answers (409) to an import whose archive uses unknown host labels. */
export interface UnknownHosts {
  unknown_hosts: string[]
  hosts: string[]
}

export function isUnknownHosts(data: unknown): data is UnknownHosts {
  const d = data as UnknownHosts | null
  return !!d && Array.isArray(d.unknown_hosts) && Array.isArray(d.hosts)
}

/** The choices a mapping dialog starts with: each label onto a host of the same name when
 * there is one, else the first host offered (localhost). */
export function initialMapping(u: UnknownHosts): Record<string, string> {
  const m: Record<string, string> = {}
  for (const label of u.unknown_hosts) m[label] = u.hosts.includes(label) ? label : (u.hosts[0] ?? '')
  return m
}

/** The `host_map` to upload with, or the labels still unmapped (an empty or unknown choice). */
export function hostMap(u: UnknownHosts, chosen: Record<string, string>): { map: Record<string, string>; missing: string[] } {
  const map: Record<string, string> = {}
  const missing: string[] = []
  for (const label of u.unknown_hosts) {
    const to = chosen[label]
    if (to && u.hosts.includes(to)) map[label] = to
    else missing.push(label)
  }
  return { map, missing }
}
