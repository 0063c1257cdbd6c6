// A real `sharin ui` for the tests that talk to the server (python -m sharin ui --no-browser in a
// temporary workspace). SHARIN_PYTHON names the Python that has sharin (default: `python` on PATH).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll } from 'vitest'
import { Client } from '../src/api'

/** Starts a server before the file's tests and stops it after them; the returned object's
 * `client` is set once it is up (a client of its URL, with its token). */
export function useServer(prefix: string): { client: Client } {
  const got = { client: null as unknown as Client }
  let server: ChildProcess | undefined
  let dir = ''
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `sharin-webapp-${prefix}-`))
    const proc = spawn(process.env.SHARIN_PYTHON ?? 'python', ['-m', 'sharin', 'ui', '--no-browser', '--workspace', dir], {
      env: { ...process.env, SHARIN_CONFIG_DIR: join(dir, 'config') }, // no user's hosts leak in
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    server = proc
    const url = await new Promise<string>((resolve, reject) => {
      proc.on('error', reject)
      proc.on('exit', (code) => reject(new Error(`sharin ui exited (${code}); is SHARIN_PYTHON a Python with sharin?`)))
      createInterface({ input: proc.stdout! }).once('line', (line) => resolve(line.replace(/^sharin UI: /, '')))
    })
    const [base, token] = url.split('/?token=')
    got.client = new Client({ base, token })
  })
  afterAll(() => {
    server?.kill()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })
  return got
}
