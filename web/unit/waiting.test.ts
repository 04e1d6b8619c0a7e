import { expect, test } from 'vitest';
import { isWaiting, waitingDetail, waitingFor } from '../src/waiting';

test('each reason in words, with its particulars', () => {
  const limit = { reason: 'limit', key: 'doc:7', maxRunning: 1, limit: 'per-document' };
  expect(waitingFor(limit)).toBe('waiting for its concurrency limit');
  expect(waitingDetail(limit)).toBe('key doc:7, at most 1 running, limit per-document');
  const thread = { reason: 'thread', runId: '0190abcd-1234-7000-8000-000000000000' };
  expect(waitingFor(thread)).toBe('waiting for its thread');
  expect(waitingDetail(thread)).toBe('behind run 0190abcd');
  expect(waitingFor({ reason: 'rateLimit', route: 'kimi' })).toBe('waiting for a rate-limit slot');
  expect(waitingDetail({ reason: 'rateLimit', route: 'kimi' })).toBe('route kimi');
  expect(waitingFor({ reason: 'later' })).toBe('waiting (later)');
  expect(waitingDetail({ reason: 'later' })).toBe('');
});

test('only an object with a reason is a waiting reason', () => {
  expect(isWaiting(null)).toBe(false);
  expect(isWaiting(undefined)).toBe(false);
  expect(isWaiting({})).toBe(false);
  expect(isWaiting({ reason: 'limit' })).toBe(true);
});
