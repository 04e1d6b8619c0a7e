import { expect, test } from 'vitest';
import { describeEvent } from '../../src/pages/RunDetail';
import { run } from '../helpers';

const events = (r: ReturnType<typeof run>) => r.events.map(describeEvent);

test('a completion names the artifacts it produced', () => {
  const r = run([], [[0, 'task.completed', 'a', {
    provider: 'local', model: 'm',
    artifacts: [{ artifactId: 'x', name: 'answer.md', version: 2, size: 5, sha256: 's' }, { name: 'b.txt', version: 1 }],
  }]]);
  expect(events(r)).toEqual(['provider local · model m · artifact answer.md v2 · artifact b.txt v1']);
});

test('a run written before migration 0039 shows its artifact.created events, and junk is skipped', () => {
  const r = run([], [
    [0, 'artifact.created', 'a', { artifactId: 'x', name: 'answer.md', version: 1, size: 5 }],
    [1, 'task.completed', 'a', { provider: 'local' }],
    [2, 'task.completed', 'b', { artifacts: [null, 'x', { version: 1 }] }],
  ]);
  expect(events(r)).toEqual(['name answer.md', 'provider local', '']);
});
