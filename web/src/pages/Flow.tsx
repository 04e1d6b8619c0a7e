import { useQuery } from '@tanstack/react-query';
import { api, type Flow } from '../api';
import { formatTime } from '../format';
import { Link } from '../router';
import { ErrorText, StatusBadge } from './common';

// "1 of 2" when the key has a limit, the plain count when it has none.
export function runningText(running: number, maxRunning: number | null): string {
  return maxRunning === null ? String(running) : `${running} of ${maxRunning}`;
}

// A route's limits as the operator wrote them: "60 requests/min, 120,000 tokens/min".
export function limitsText(rpm: number | null, tpm: number | null): string {
  const per = (n: number, unit: string) => `${n.toLocaleString('en-US')} ${unit}${n === 1 ? '' : 's'}/min`;
  const parts = [rpm !== null ? per(rpm, 'request') : '', tpm !== null ? per(tpm, 'token') : ''];
  return parts.filter(Boolean).join(', ') || 'back-off sharing only';
}

// What flow control is doing for the tenant (GET /v1/flow, docs/flow-control.md): its
// concurrency keys, the routes' rate limits and its threads with runs waiting for their turn.
// Live: the tenant feed marks ['runs', …] stale on every ledger event (a task.waiting too).
export function FlowPage() {
  const flow = useQuery({ queryKey: ['runs', 'flow'], queryFn: () => api<Flow>('/v1/flow') });
  const f = flow.data;
  return (
    <section aria-labelledby="flow-title">
      <h1 id="flow-title">Flow control</h1>
      <ErrorText error={flow.error} />
      <h2 id="keys-title">Concurrency keys</h2>
      <p className="muted">
        Tasks submitted with a <code>concurrencyKey</code> that run, wait for the key&apos;s limit or are ready to run.
      </p>
      <table aria-labelledby="keys-title">
        <thead>
          <tr>
            <th scope="col">Key</th><th scope="col">Running</th><th scope="col">Waiting for the limit</th><th scope="col">Ready</th>
            <th scope="col">Longest waiting since</th><th scope="col">Limit</th><th scope="col">Strategy</th>
          </tr>
        </thead>
        <tbody>
          {f?.keys.map((k) => (
            <tr key={k.key} data-flow-key={k.key}>
              <td><code>{k.key}</code></td>
              <td className="num">{runningText(k.running, k.maxRunning)}</td>
              <td className="num">{k.waiting}</td>
              <td className="num">{k.ready}</td>
              <td>{formatTime(k.oldestWaitingSince)}</td>
              <td>{k.limit ? <Link to={`/control/concurrency/${encodeURIComponent(k.limit)}`}>{k.limit}</Link> : <span className="muted">unlimited</span>}</td>
              <td>{k.strategy ?? '—'}</td>
            </tr>
          ))}
          {f?.keys.length === 0 && <tr><td colSpan={7} className="muted">No task with a concurrency key is running or waiting.</td></tr>}
        </tbody>
      </table>
      {f?.moreKeys && <p className="muted">Only the 500 busiest keys are listed.</p>}

      <h2 id="routes-title">Rate limits</h2>
      <p className="muted">
        Routes with <code>limits</code>. The next slot and a provider&apos;s back-off are the route&apos;s, shared by every tenant;
        the waiting tasks are this tenant&apos;s.
      </p>
      <table aria-labelledby="routes-title">
        <thead>
          <tr>
            <th scope="col">Route</th><th scope="col">Limits</th><th scope="col">Next slot</th><th scope="col">Backed off until (429)</th>
            <th scope="col">Tasks waiting for a slot</th><th scope="col">Latest slot waited for</th>
          </tr>
        </thead>
        <tbody>
          {f?.routes.map((r) => (
            <tr key={r.route} data-flow-route={r.route}>
              <td><Link to={`/control/routes/${encodeURIComponent(r.route)}`}>{r.route}</Link></td>
              <td>{limitsText(r.requestsPerMinute, r.tokensPerMinute)}</td>
              <td>{r.nextSlotAt ? formatTime(r.nextSlotAt) : 'now'}</td>
              <td>{formatTime(r.blockedUntil)}</td>
              <td className="num">{r.waiting}</td>
              <td>{formatTime(r.waitingUntil)}</td>
            </tr>
          ))}
          {f?.routes.length === 0 && <tr><td colSpan={6} className="muted">No route has limits.</td></tr>}
        </tbody>
      </table>

      <h2 id="threads-title">Threads with waiting runs</h2>
      <p className="muted">A thread runs its runs one at a time, in order; the others wait for their turn.</p>
      <table aria-labelledby="threads-title">
        <thead>
          <tr><th scope="col">Thread</th><th scope="col">Runs waiting</th><th scope="col">Waiting since</th><th scope="col">Run holding the thread</th></tr>
        </thead>
        <tbody>
          {f?.threads.map((t) => (
            <tr key={t.threadId} data-flow-thread={t.threadId}>
              <td><Link to={`/?threadId=${t.threadId}`} aria-label={`Runs of thread ${t.threadId}`}>{t.threadId.slice(0, 8)}</Link></td>
              <td className="num">{t.queuedRuns}</td>
              <td>{formatTime(t.oldestQueuedAt)}</td>
              <td>
                {t.runId ? (
                  <>
                    <Link to={`/runs/${t.runId}`} aria-label={`Run ${t.runId}`}>{t.runId.slice(0, 8)}</Link>{' '}
                    {t.runStatus && <StatusBadge status={t.runStatus} />}
                  </>
                ) : '—'}
              </td>
            </tr>
          ))}
          {f?.threads.length === 0 && <tr><td colSpan={4} className="muted">No run waits for its thread.</td></tr>}
        </tbody>
      </table>
      {f?.moreThreads && <p className="muted">Only the 500 threads that have waited longest are listed.</p>}
    </section>
  );
}
