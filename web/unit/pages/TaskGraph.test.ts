import { expect, test } from 'vitest';
import { layout } from '../../src/pages/TaskGraph';
import { task } from '../helpers';

test('one column per depth: a fan-out shares a column, the join comes after it', () => {
  const g = layout([task('plan'), task('a', ['plan']), task('b', ['plan']), task('c', ['plan']), task('join', ['a', 'b', 'c']), task('alone')]);
  const at = Object.fromEntries(g.placed.map((p) => [p.task.name, [p.col, p.row]]));
  expect(at).toEqual({ plan: [0, 0], a: [1, 0], b: [1, 1], c: [1, 2], join: [2, 0], alone: [0, 1] });
  expect(g.cols).toBe(3);
  expect(g.rows).toBe(3);
});

test('a task sits right of its deepest dependency; unknown names and cycles do not loop', () => {
  const g = layout([task('a'), task('b', ['a']), task('c', ['a', 'b', 'ghost']), task('x', ['y']), task('y', ['x'])]);
  const col = Object.fromEntries(g.placed.map((p) => [p.task.name, p.col]));
  expect(col.c).toBe(2);
  // A cycle cannot run; it is drawn (the second visit counts as depth 0) instead of looping.
  expect([col.x, col.y]).toEqual([2, 1]);
});

test('no tasks: an empty layout', () => {
  expect(layout([])).toEqual({ placed: [], cols: 0, rows: 0 });
});
