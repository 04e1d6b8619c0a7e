import { expect, test } from 'vitest';
import { limitsText, runningText } from '../../src/pages/Flow';
import { threadWindow } from '../../src/pages/ThreadRuns';
import type { ThreadRun } from '../../src/api';

test('running against the limit, or alone when the key is unlimited', () => {
  expect(runningText(1, 1)).toBe('1 of 1');
  expect(runningText(3, null)).toBe('3');
});

test('a route limits in words', () => {
  expect(limitsText(60, 120000)).toBe('60 requests/min, 120,000 tokens/min');
  expect(limitsText(null, 5000)).toBe('5,000 tokens/min');
  expect(limitsText(1, 1)).toBe('1 request/min, 1 token/min');
  expect(limitsText(null, null)).toBe('back-off sharing only');
});

const runs = (n: number): ThreadRun[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `r${i + 1}`, status: 'succeeded', commandId: 'c', threadId: 't', createdAt: '', startedAt: null, finishedAt: null, error: null,
    threadSeq: i + 1, threadTurn: null, title: `turn ${i + 1}`,
  }));

test("a thread's runs around the current one", () => {
  expect(threadWindow(runs(3), 'r2', 5)).toMatchObject({ before: 0, after: 0 });
  const mid = threadWindow(runs(100), 'r50', 5);
  expect(mid.shown.map((r) => r.id)).toEqual(['r48', 'r49', 'r50', 'r51', 'r52']);
  expect([mid.before, mid.after]).toEqual([47, 48]);
  expect(threadWindow(runs(100), 'r1', 5).shown.map((r) => r.id)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
  const last = threadWindow(runs(100), 'r100', 5);
  expect(last.shown.map((r) => r.id)).toEqual(['r96', 'r97', 'r98', 'r99', 'r100']);
  expect([last.before, last.after]).toEqual([95, 0]);
});
