// What every screen shares: the API client, the message line and the confirmation dialog.
import { reactive } from 'vue'
import { ApiError, Client } from './api'

export const client = new Client()

export const notice = reactive({ error: '', info: '', problems: [] as string[] })

/** A validation problem as the server gives it ({file, field, message}) in one line. */
export function problemText(p: unknown): string {
  if (p && typeof p === 'object' && 'message' in p) {
    const { file, field, message } = p as { file?: string; field?: string; message: string }
    return `${file ?? ''}${field ? ` [${field}]` : ''}: ${message}`
  }
  return String(p)
}

export function showError(e: unknown): void {
  notice.info = ''
  notice.error = e instanceof ApiError || e instanceof Error ? e.message : String(e)
  notice.problems = e instanceof ApiError ? e.problems.map(problemText) : []
}

let infoTimer: ReturnType<typeof setTimeout> | undefined

export function showInfo(text: string): void {
  notice.error = ''
  notice.problems = []
  notice.info = text
  clearTimeout(infoTimer)
  infoTimer = setTimeout(() => {
    if (notice.info === text) notice.info = ''
  }, 6000)
}

/** Runs `f`, showing its error in the message line; returns its result or undefined. */
export async function attempt<T>(f: () => Promise<T>): Promise<T | undefined> {
  try {
    const r = await f()
    notice.error = ''
    return r
  } catch (e) {
    showError(e)
    return undefined
  }
}

export const dialog = reactive({
  open: false,
  title: '',
  text: '',
  action: 'OK',
  input: null as string | null, // a text field when not null
  kind: 'text' as DialogInput, // the field's kind: a password field hides what is typed
  resolve: (_: string | null) => {},
})

export type DialogInput = 'text' | 'password'

/** Asks the user; resolves to the text typed (or "" without a field), or null for Cancel.
 * With `kind` 'password' the field hides what is typed (a passphrase, a one-time code). */
export function ask(
  title: string,
  text: string,
  action = 'OK',
  input: string | null = null,
  kind: DialogInput = 'text',
): Promise<string | null> {
  return new Promise((resolve) => {
    Object.assign(dialog, { open: true, title, text, action, input, kind, resolve })
  })
}

export function stateClass(state: string | undefined): string {
  return `state state-${(state || 'not-started').replace(/[^a-z-]/gi, '')}`
}
