// How a workflow's components become the graph editor's nodes and edges, and how a connection
// drawn between two handles becomes a flow edge or a file edge.
//
// Handles: `prev` (flow in, top), `next` / `else` (flow out, bottom), `in:NAME` (an input file,
// left), `out:NAME` (an output file, right) and `in:+` (a new input file named as the output).

import type { Component } from './api'

export const CONTAINERS = new Set(['workflow', 'for', 'while', 'foreach', 'parameterStudy', 'stepjob'])

/** Every component type, in the palette's order, with WHEEL's names. */
export const COMPONENT_TYPES: { type: string; label: string }[] = [
  { type: 'task', label: 'Task' },
  { type: 'if', label: 'If' },
  { type: 'for', label: 'For' },
  { type: 'while', label: 'While' },
  { type: 'foreach', label: 'Foreach' },
  { type: 'break', label: 'Break' },
  { type: 'continue', label: 'Continue' },
  { type: 'workflow', label: 'Workflow' },
  { type: 'parameterStudy', label: 'PS' },
  { type: 'source', label: 'Source' },
  { type: 'viewer', label: 'Viewer' },
  { type: 'storage', label: 'Storage' },
  { type: 'stepjob', label: 'Stepjob' },
  { type: 'stepjobTask', label: 'Stepjob task' },
  { type: 'bulkjobTask', label: 'Bulkjob task' },
  { type: 'hpciss', label: 'HPCI-SS' },
  { type: 'hpcisstar', label: 'HPCI-SS tar' },
]

export interface NodeData {
  component: Component
  inputs: string[]
  outputs: string[]
  state: string
  hasElse: boolean
}

export interface GraphNode {
  id: string
  type: 'component'
  position: { x: number; y: number }
  data: NodeData
}

export interface GraphEdge {
  id: string
  source: string
  target: string
  sourceHandle: string
  targetHandle: string
  data: { kind: 'flow'; else: boolean } | { kind: 'file'; srcName: string; dstName: string }
  class: string
}

export type Connection =
  | { kind: 'flow'; src: string; dst: string; else: boolean }
  | { kind: 'file'; src: string; srcName: string; dst: string; dstName: string }

function names(list: unknown): string[] {
  if (!Array.isArray(list)) return []
  return list.map((f) => (f && typeof f.name === 'string' ? f.name : '')).filter((n) => n)
}

function ids(list: unknown): string[] {
  return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : []
}

/** Where a component without a saved position is drawn: a grid in the order of the children. */
export function defaultPosition(index: number): { x: number; y: number } {
  return { x: 60 + (index % 4) * 260, y: 60 + Math.floor(index / 4) * 200 }
}

function position(c: Component, index: number): { x: number; y: number } {
  const p = c.properties.pos
  if (p && typeof p.x === 'number' && typeof p.y === 'number' && Number.isFinite(p.x) && Number.isFinite(p.y)) {
    return { x: p.x, y: p.y }
  }
  return defaultPosition(index)
}

/** The nodes and edges of the workflow (or other container) `parent`: its children and the
 * flow and file edges between them. `stateOf` gives a child's state to show (live or saved). */
export function toGraph(
  parent: Component,
  stateOf: (c: Component) => string = (c) => c.state,
): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const kids = parent.children
  const here = new Set(kids.map((c) => c.id))
  const nodes: GraphNode[] = kids.map((c, i) => ({
    id: c.id,
    type: 'component',
    position: position(c, i),
    data: {
      component: c,
      inputs: names(c.properties.inputFiles),
      outputs: names(c.properties.outputFiles),
      state: stateOf(c),
      hasElse: c.type === 'if' || Array.isArray(c.properties.else) && c.properties.else.length > 0,
    },
  }))
  const edges: GraphEdge[] = []
  for (const c of kids) {
    for (const [field, isElse] of [['next', false], ['else', true]] as const) {
      for (const dst of ids(c.properties[field])) {
        if (!here.has(dst)) continue
        edges.push({
          id: `flow:${c.id}:${isElse ? 'else' : 'next'}:${dst}`,
          source: c.id,
          target: dst,
          sourceHandle: isElse ? 'else' : 'next',
          targetHandle: 'prev',
          data: { kind: 'flow', else: isElse },
          class: isElse ? 'edge-flow edge-else' : 'edge-flow',
        })
      }
    }
    const outs = Array.isArray(c.properties.outputFiles) ? c.properties.outputFiles : []
    for (const f of outs) {
      if (!f || typeof f.name !== 'string') continue
      for (const d of Array.isArray(f.dst) ? f.dst : []) {
        if (!d || !here.has(d.dstNode) || typeof d.dstName !== 'string') continue
        edges.push({
          id: `file:${c.id}:${f.name}:${d.dstNode}:${d.dstName}`,
          source: c.id,
          target: d.dstNode,
          sourceHandle: `out:${f.name}`,
          targetHandle: `in:${d.dstName}`,
          data: { kind: 'file', srcName: f.name, dstName: d.dstName },
          class: 'edge-file',
        })
      }
    }
  }
  return { nodes, edges }
}

/** The edge a connection drawn from `sourceHandle` of `source` to `targetHandle` of `target`
 * means, or an explanation of why it means none. */
export function toConnection(
  source: string,
  sourceHandle: string | null | undefined,
  target: string,
  targetHandle: string | null | undefined,
): Connection | string {
  if (source === target) return 'a component cannot be connected to itself'
  const sh = sourceHandle ?? ''
  const th = targetHandle ?? ''
  if (sh === 'next' || sh === 'else') {
    if (th !== 'prev') return 'a flow edge goes from the bottom of a component to the top of another'
    return { kind: 'flow', src: source, dst: target, else: sh === 'else' }
  }
  if (sh.startsWith('out:')) {
    if (!th.startsWith('in:')) return 'a file edge goes from an output file to an input file'
    const srcName = sh.slice(4)
    const dstName = th === 'in:+' ? srcName : th.slice(3)
    return { kind: 'file', src: source, srcName, dst: target, dstName }
  }
  return 'draw from an output file or from the bottom of a component'
}

/** The components from the root down to the one with `id` (for the breadcrumb), or [] when
 * the root holds no such component. */
export function ancestry(root: Component, id: string): Component[] {
  if (root.id === id) return [root]
  for (const c of root.children) {
    const below = ancestry(c, id)
    if (below.length) return [root, ...below]
  }
  return []
}

/** Every component below `root`, depth first, with its depth (for the list view). */
export function flatten(root: Component, depth = 0): { component: Component; depth: number }[] {
  const out: { component: Component; depth: number }[] = []
  for (const c of root.children) {
    out.push({ component: c, depth })
    out.push(...flatten(c, depth + 1))
  }
  return out
}

/** A name for a new component of `type` not used among `siblings` (task0, task1, … as WHEEL). */
export function freshName(type: string, siblings: Component[]): string {
  const used = new Set(siblings.map((c) => c.name))
  for (let i = 0; ; i++) if (!used.has(`${type}${i}`)) return `${type}${i}`
}
