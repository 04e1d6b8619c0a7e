import { expect, test } from 'vitest';
import { diffLines } from '../../src/pages/Control';

test('a line diff keeps common lines and marks removed and added ones', () => {
  const a = '{\n  "template": "Hello {{name}}",\n  "model": "m"\n}';
  const b = '{\n  "template": "Good day, {{name}}",\n  "model": "m"\n}';
  expect(diffLines(a, b)).toEqual([
    { op: ' ', line: '{' },
    { op: '+', line: '  "template": "Good day, {{name}}",' },
    { op: '-', line: '  "template": "Hello {{name}}",' },
    { op: ' ', line: '  "model": "m"' },
    { op: ' ', line: '}' },
  ]);
});

test('identical texts have no change; an empty side is all added or all removed', () => {
  expect(diffLines('a\nb', 'a\nb').every((d) => d.op === ' ')).toBe(true);
  expect(diffLines('', 'x').map((d) => d.op)).toEqual(['+', '-']);
  expect(diffLines('x\ny', 'x').map((d) => d.op)).toEqual([' ', '-']);
});
