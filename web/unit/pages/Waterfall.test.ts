import { expect, test } from 'vitest';
import { waterfall } from '../../src/pages/Waterfall';
import { at, run, task } from '../helpers';

const phases = (r: ReturnType<typeof waterfall>, name: string) =>
  r.find((g) => g.name === name)!.spans.map((s) => [s.phase, s.start - Date.parse(at(0)), s.end === null ? null : s.end - Date.parse(at(0))]);

test('queue wait, then model time until the attempt completes', () => {
  const r = run([task('a')], [[0, 'task.queued', 'a'], [200, 'task.claimed', 'a'], [1200, 'task.completed', 'a']]);
  expect(phases(waterfall(r), 'a')).toEqual([['queue wait', 0, 200], ['model time', 200, 1200]]);
});

test('a join waits for its dependencies, then queues', () => {
  const r = run([task('a'), task('b'), task('join', ['a', 'b'])], [
    [0, 'task.queued', 'a'], [0, 'task.queued', 'b'], [0, 'task.queued', 'join'],
    [100, 'task.claimed', 'a'], [100, 'task.claimed', 'b'], [500, 'task.completed', 'a'], [900, 'task.completed', 'b'],
    [1000, 'task.claimed', 'join'], [1500, 'task.completed', 'join'],
  ]);
  expect(phases(waterfall(r), 'join')).toEqual([['waiting for dependencies', 0, 900], ['queue wait', 900, 1000], ['model time', 1000, 1500]]);
});

test('a task a concurrency limit held back waits for a slot, and says which', () => {
  const r = run([task('a')], [
    [0, 'task.queued', 'a'], [100, 'task.waiting', 'a', { reason: 'limit', key: 'doc:7', maxRunning: 1, limit: 'per-document' }],
    [3000, 'task.claimed', 'a'], [4000, 'task.completed', 'a'],
  ]);
  const g = waterfall(r)[0]!;
  expect(phases([g], 'a')).toEqual([['queue wait', 0, 100], ['waiting for a concurrency slot', 100, 3000], ['model time', 3000, 4000]]);
  expect(g.spans[1]!.detail).toBe('key doc:7, at most 1 running, limit per-document');
});

test('still waiting for its limit: the wait runs to now', () => {
  const r = run([task('a', [], { status: 'queued' })], [[0, 'task.queued', 'a'], [0, 'task.waiting', 'a', { reason: 'limit', key: 'k' }]]);
  expect(phases(waterfall(r), 'a')).toEqual([['waiting for a concurrency slot', 0, null]]);
});

test("a run behind its thread waits for the thread's turn, then queues", () => {
  const r = run([task('a')], [
    [0, 'task.queued', 'a'], [0, 'task.waiting', 'a', { reason: 'thread', runId: '0190abcd-0000-7000-8000-000000000000' }],
    [5000, 'task.ready', 'a', { reason: 'thread' }], [5100, 'task.claimed', 'a'], [6000, 'task.completed', 'a'],
  ]);
  const g = waterfall(r)[0]!;
  expect(phases([g], 'a')).toEqual([['waiting for its thread', 0, 5000], ['queue wait', 5000, 5100], ['model time', 5100, 6000]]);
  expect(g.spans[0]!.detail).toBe('behind run 0190abcd');
});

test('a rate limit sends a claimed task back: no model time for that claim, a wait for the slot', () => {
  const r = run([task('a')], [
    [0, 'task.queued', 'a'], [100, 'task.claimed', 'a'],
    [150, 'task.waiting', 'a', { reason: 'rateLimit', route: 'kimi', until: at(2000), waitMs: 1850 }],
    [2000, 'task.claimed', 'a'], [2600, 'task.completed', 'a'],
  ]);
  expect(phases(waterfall(r), 'a')).toEqual([
    ['queue wait', 0, 100], ['waiting for a rate-limit slot', 150, 2000], ['model time', 2000, 2600],
  ]);
});

test('a failed attempt is a red bar, then the retry queues again', () => {
  const r = run([task('a')], [
    [0, 'task.queued', 'a'], [100, 'task.claimed', 'a'], [600, 'task.retry_scheduled', 'a', { error: { message: 'boom' } }],
    [900, 'task.claimed', 'a', {}, 2], [1300, 'task.completed', 'a', {}, 2],
  ]);
  const g = waterfall(r)[0]!;
  expect(g.spans.map((s) => [s.kind, s.phase])).toEqual([['queue', 'queue wait'], ['failed', 'model time'], ['queue', 'queue wait'], ['model', 'model time']]);
  expect(g.spans[1]!.detail).toBe('attempt 1 · failed, retried: boom');
});
