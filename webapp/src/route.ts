// The address: #/ (projects), #/p/ID/VIEW?query (a project's view: graph, list, files, logs, hosts).
import { reactive } from 'vue'

export interface Route {
  project: string | null
  view: string
  query: Record<string, string>
}

export function parse(hash: string): Route {
  const [path, q = ''] = hash.replace(/^#/, '').split('?')
  const parts = path.split('/').filter((x) => x)
  const query = Object.fromEntries(new URLSearchParams(q))
  if (parts[0] === 'p' && parts[1]) return { project: parts[1], view: parts[2] ?? 'graph', query }
  if (parts[0] === 'hosts') return { project: null, view: 'hosts', query }
  return { project: null, view: 'home', query }
}

export function href(project: string | null, view = 'graph', query: Record<string, string> = {}): string {
  const q = new URLSearchParams(query).toString()
  const base = project ? `#/p/${project}/${view}` : view === 'hosts' ? '#/hosts' : '#/'
  return q ? `${base}?${q}` : base
}

export const route = reactive<Route>(parse(location.hash))
window.addEventListener('hashchange', () => Object.assign(route, parse(location.hash)))

export function go(project: string | null, view = 'graph', query: Record<string, string> = {}): void {
  location.hash = href(project, view, query)
}
