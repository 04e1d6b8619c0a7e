import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, type Me } from '../api';
import { errorText, formatTime } from '../format';
import { Link } from '../router';
import { ErrorText } from './common';

interface Dead {
  itemId: number;
  taskId?: string;
  runId?: string;
  queue?: string;
  attempts?: number;
  error?: string | { code?: string; message?: string } | null;
  failedAt?: string;
  [k: string]: unknown;
}

interface Queue {
  queue: string;
  waiting: number;
  ready: number;
  leased: number;
  held: number;
  dead: number;
  oldestReadyAt: string | null;
}


export function QueuesPage({ me }: { me: Me }) {
  const client = useQueryClient();
  const queues = useQuery({ queryKey: ['runs', 'queues'], queryFn: () => api<{ items: Queue[] }>('/v1/queues') });
  const dead = useQuery({ queryKey: ['runs', 'dead'], queryFn: () => api<{ items: Dead[] }>('/v1/queue/dead?limit=200') });
  const requeue = useMutation({
    mutationFn: (id: number) => api(`/v1/queue/items/${id}/retry`, { method: 'POST' }),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['runs'] }),
  });
  return (
    <section aria-labelledby="queues-title">
      <h1 id="queues-title">Queues</h1>
      <ErrorText error={queues.error} />
      <table aria-label="Queues">
        <thead><tr><th scope="col">Queue</th><th scope="col">Ready</th><th scope="col">Oldest ready since</th><th scope="col">Waiting</th><th scope="col">Leased</th><th scope="col">Held</th><th scope="col">Dead</th></tr></thead>
        <tbody>
          {queues.data?.items.map((q) => (
            <tr key={q.queue}>
              <td>{q.queue}</td>
              <td>{q.ready}</td>
              <td>{formatTime(q.oldestReadyAt)}</td>
              <td>{q.waiting}</td>
              <td>{q.leased}</td>
              <td>{q.held}</td>
              <td>{q.dead}</td>
            </tr>
          ))}
          {queues.data?.items.length === 0 && <tr><td colSpan={7} className="muted">No queued work.</td></tr>}
        </tbody>
      </table>
      <h2>Dead letters</h2>
      <ErrorText error={dead.error ?? requeue.error} />
      <table aria-label="Dead letters">
        <thead><tr><th scope="col">Item</th><th scope="col">Queue</th><th scope="col">Run</th><th scope="col">Attempts</th><th scope="col">Error</th><th scope="col">Since</th><th scope="col"><span className="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {dead.data?.items.map((d) => (
            <tr key={d.itemId} data-item-id={d.itemId} data-run-id={d.runId}>
              <td>{d.itemId}</td>
              <td>{d.queue ?? ''}</td>
              <td>{d.runId ? <Link to={`/runs/${d.runId}`}>{d.runId.slice(0, 8)}</Link> : ''}</td>
              <td>{d.attempts ?? ''}</td>
              <td>{errorText(d.error)}</td>
              <td>{formatTime(typeof d.failedAt === 'string' ? d.failedAt : undefined)}</td>
              <td>{me.may.operate && <button type="button" disabled={requeue.isPending} onClick={() => requeue.mutate(d.itemId)}>Requeue</button>}</td>
            </tr>
          ))}
          {dead.data?.items.length === 0 && <tr><td colSpan={7} className="muted">No dead letters.</td></tr>}
        </tbody>
      </table>
    </section>
  );
}
