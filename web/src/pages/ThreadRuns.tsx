import { useQuery } from '@tanstack/react-query';
import { api, type Thread, type ThreadRun } from '../api';
import { formatTime } from '../format';
import { Link } from '../router';
import { StatusBadge } from './common';

// The part of a thread's runs (in thread order) shown around the current one: all of them when
// they fit in `size`, otherwise `size` runs with the current one in the middle (or as near as
// the ends allow). `before` / `after`: how many were left out on either side.
export function threadWindow(runs: ThreadRun[], currentId: string, size: number): { shown: ThreadRun[]; before: number; after: number } {
  if (runs.length <= size) return { shown: runs, before: 0, after: 0 };
  const at = Math.max(0, runs.findIndex((r) => r.id === currentId));
  const start = Math.min(Math.max(0, at - Math.floor(size / 2)), runs.length - size);
  return { shown: runs.slice(start, start + size), before: start, after: runs.length - start - size };
}

const SHOWN = 21;

// A thread runs its runs one at a time, in submit order (docs/flow-control.md): this lists them
// in that order, the current run marked. Nothing when the run is the thread's only one (or the
// thread is not readable, as for another tenant's run seen by the installation scope).
export function ThreadRuns({ threadId, runId }: { threadId: string; runId: string }) {
  const thread = useQuery({
    queryKey: ['runs', 'thread', threadId],
    queryFn: () => api<Thread>(`/v1/threads/${threadId}`),
    retry: false,
  });
  const runs = thread.data?.runs ?? [];
  if (runs.length < 2) return null;
  const { shown, before, after } = threadWindow(runs, runId, SHOWN);
  return (
    <>
      <h2 id="thread-title">Thread</h2>
      <p className="muted">
        {runs.length} runs on thread <Link to={`/?threadId=${threadId}`}>{threadId.slice(0, 8)}</Link>, run one at a time in this order
        {before > 0 ? `; ${before} earlier not shown` : ''}{after > 0 ? `; ${after} later not shown` : ''}.
      </p>
      <ol className="thread-runs" aria-labelledby="thread-title">
        {shown.map((r) => (
          <li key={r.id} data-thread-run={r.id} aria-current={r.id === runId ? 'true' : undefined} value={r.threadSeq}>
            {r.id === runId ? <strong>{r.title || r.id.slice(0, 8)} (this run)</strong> : <Link to={`/runs/${r.id}`}>{r.title || r.id.slice(0, 8)}</Link>}{' '}
            <StatusBadge status={r.status} />{' '}
            <span className="muted">{formatTime(r.createdAt)}{r.threadTurn ? ` · ${r.threadTurn === 'rolledBack' ? 'rolled back' : 'interrupted'}` : ''}</span>
          </li>
        ))}
      </ol>
    </>
  );
}
