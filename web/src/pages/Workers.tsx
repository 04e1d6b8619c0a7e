import { useQuery } from '@tanstack/react-query';
import { api } from '../api';
import { formatTime } from '../format';
import { ErrorText } from './common';

type Worker = Record<string, unknown>;

function text(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.join(', ');
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export function WorkersPage() {
  // Workers heartbeat on their own clock, not through the ledger: refresh every 10 s.
  const workers = useQuery({ queryKey: ['workers'], queryFn: () => api<{ items: Worker[] }>('/v1/workers'), refetchInterval: 10_000 });
  return (
    <section aria-labelledby="workers-title">
      <h1 id="workers-title">Workers</h1>
      <ErrorText error={workers.error} />
      <table>
        <thead><tr><th scope="col">Name</th><th scope="col">Live</th><th scope="col">In flight</th><th scope="col">Queues</th><th scope="col">Pod</th><th scope="col">Version</th><th scope="col">Last heartbeat</th></tr></thead>
        <tbody>
          {workers.data?.items.map((w) => (
            <tr key={text(w.id)}>
              <td>{text(w.name)}</td>
              <td>{w.alive ? 'yes' : 'no'}</td>
              <td>{text(w.inFlight)}</td>
              <td>{text(w.queues)}</td>
              <td>{text(w.pod)}</td>
              <td>{text(w.version)}</td>
              <td>{formatTime(typeof w.heartbeatAt === 'string' ? w.heartbeatAt : undefined)}</td>
            </tr>
          ))}
          {workers.data?.items.length === 0 && <tr><td colSpan={7} className="muted">No workers in the last hour.</td></tr>}
        </tbody>
      </table>
    </section>
  );
}
