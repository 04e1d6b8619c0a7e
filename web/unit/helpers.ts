// Small builders for runs, tasks and ledger events, as GET /v1/runs/{id} answers them.
import type { LedgerEvent, Run, Task } from '../src/api';

export function task(name: string, dependsOn: string[] = [], extra: Partial<Task> = {}): Task {
  return { id: `id-${name}`, name, kind: 'prompt', status: 'succeeded', attempt: 1, maxAttempts: 3, dependsOn, error: null, startedAt: null, finishedAt: null, ...extra };
}

const T0 = Date.parse('2026-12-06T10:00:00Z');
export const at = (ms: number) => new Date(T0 + ms).toISOString();

// events: [ms after T0, type, task name, data?, attempt?]
export function run(tasks: Task[], events: [number, string, string, Record<string, unknown>?, number?][]): Run {
  const ledger: LedgerEvent[] = events.map(([ms, type, name, data, attempt], i) => ({
    seq: i + 1, type, taskId: `id-${name}`, attempt: attempt ?? 1, at: at(ms), data: data ?? {},
  }));
  return {
    id: 'run-1', status: 'running', commandId: 'c', threadId: 't', createdAt: at(0), startedAt: at(0), finishedAt: null, error: null,
    tasks, events: ledger, artifacts: [],
  };
}
