import { expect, test } from 'vitest';
import { apiFilterOf, runsPath } from '../../src/pages/Runs';

test('the time range goes to the API as instants; a bad time is dropped', () => {
  const f = apiFilterOf({ status: 'failed', createdAfter: '2026-12-06T10:30', createdBefore: 'yesterday' });
  expect(f.status).toBe('failed');
  expect(f.createdAfter).toBe(new Date('2026-12-06T10:30').toISOString());
  expect(f.createdBefore).toBeUndefined();
});

test('a page of runs: the filter, the tenant only when named, the cursor, 50 a page', () => {
  expect(runsPath({}, '', undefined)).toBe('/v1/runs?limit=50');
  expect(runsPath({ tag: 'bench', text: 'no-such-words' }, '', 'c1')).toBe('/v1/runs?tag=bench&text=no-such-words&cursor=c1&limit=50');
  expect(runsPath({ status: 'queued' }, '*', undefined)).toBe('/v1/runs?status=queued&tenant=*&limit=50');
});
