import { describe, expect, it } from 'vitest'
import type { Component } from '../src/api'
import { COMPONENT_TYPES, ancestry, defaultPosition, flatten, freshName, toConnection, toGraph } from '../src/graph'

function comp(id: string, name: string, type = 'task', properties: Record<string, any> = {}, children: Component[] = [], path = name): Component {
  return { id, name, type, path, state: 'not-started', properties, children }
}

const a = comp('A', 'a', 'task', {
  pos: { x: 10, y: 20 },
  next: ['B'],
  outputFiles: [{ name: 'out.txt', dst: [{ dstNode: 'B', dstName: 'in.txt' }, { dstNode: 'PARENT', dstName: 'x' }] }],
})
const b = comp('B', 'b', 'if', { inputFiles: [{ name: 'in.txt', src: [{ srcNode: 'A', srcName: 'out.txt' }] }], else: ['C'], previous: ['A'] })
const inner = comp('D', 'd', 'task', {}, [], 'c/d')
const c = comp('C', 'c', 'for', { pos: { x: 'bad', y: 3 } }, [inner])
const root = comp('R', 'demo', 'workflow', {}, [a, b, c], '')

describe('a workflow as graph nodes and edges', () => {
  it('has a node per child, where it was drawn or on a grid', () => {
    const { nodes } = toGraph(root)
    expect(nodes.map((n) => n.id)).toEqual(['A', 'B', 'C'])
    expect(nodes[0].position).toEqual({ x: 10, y: 20 })
    expect(nodes[1].position).toEqual(defaultPosition(1)) // no pos
    expect(nodes[2].position).toEqual(defaultPosition(2)) // a pos that is no number
    expect(nodes[0].data.outputs).toEqual(['out.txt'])
    expect(nodes[1].data.inputs).toEqual(['in.txt'])
    expect(nodes[1].data.hasElse).toBe(true)
    expect(nodes[0].data.hasElse).toBe(false)
  })

  it('has the flow, else and file edges between the children, and none leaving them', () => {
    const { edges } = toGraph(root)
    const brief = edges.map((e) => [e.source, e.sourceHandle, e.target, e.targetHandle, e.data.kind])
    expect(brief).toEqual([
      ['A', 'next', 'B', 'prev', 'flow'],
      ['A', 'out:out.txt', 'B', 'in:in.txt', 'file'],
      ['B', 'else', 'C', 'prev', 'flow'],
    ])
    expect(new Set(edges.map((e) => e.id)).size).toBe(edges.length)
  })

  it('shows the state it is given (the live one) instead of the saved one', () => {
    const { nodes } = toGraph(root, (x) => (x.id === 'A' ? 'running' : x.state))
    expect(nodes.map((n) => n.data.state)).toEqual(['running', 'not-started', 'not-started'])
  })

  it('of a nested workflow holds its own children', () => {
    expect(toGraph(c).nodes.map((n) => n.id)).toEqual(['D'])
  })
})

describe('a connection drawn between handles', () => {
  it('from the bottom to the top is a flow edge, from else an else edge', () => {
    expect(toConnection('A', 'next', 'B', 'prev')).toEqual({ kind: 'flow', src: 'A', dst: 'B', else: false })
    expect(toConnection('B', 'else', 'C', 'prev')).toEqual({ kind: 'flow', src: 'B', dst: 'C', else: true })
  })
  it('from an output file to an input file is a file edge; to "+ input" one of the same name', () => {
    expect(toConnection('A', 'out:o.txt', 'B', 'in:i.txt')).toEqual({ kind: 'file', src: 'A', srcName: 'o.txt', dst: 'B', dstName: 'i.txt' })
    expect(toConnection('A', 'out:o.txt', 'B', 'in:+')).toEqual({ kind: 'file', src: 'A', srcName: 'o.txt', dst: 'B', dstName: 'o.txt' })
  })
  it('mixing flow and file handles, or a loop on itself, is explained', () => {
    expect(typeof toConnection('A', 'next', 'B', 'in:x')).toBe('string')
    expect(typeof toConnection('A', 'out:o', 'B', 'prev')).toBe('string')
    expect(typeof toConnection('A', 'next', 'A', 'prev')).toBe('string')
    expect(typeof toConnection('A', null, 'B', 'prev')).toBe('string')
  })
})

describe('the other views of the components', () => {
  it('ancestry is the breadcrumb from the root', () => {
    expect(ancestry(root, 'D').map((x) => x.name)).toEqual(['demo', 'c', 'd'])
    expect(ancestry(root, 'R').map((x) => x.name)).toEqual(['demo'])
    expect(ancestry(root, 'nope')).toEqual([])
  })
  it('flatten lists every component depth first', () => {
    expect(flatten(root).map((r) => [r.component.path, r.depth])).toEqual([['a', 0], ['b', 0], ['c', 0], ['c/d', 1]])
  })
  it('a new component gets the first free name of its type', () => {
    expect(freshName('task', [comp('1', 'task0'), comp('2', 'task2')])).toBe('task1')
    expect(freshName('for', [])).toBe('for0')
  })
  it('the palette has every component type once', () => {
    const types = COMPONENT_TYPES.map((t) => t.type)
    expect(new Set(types).size).toBe(17)
  })
})
