import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api, fetchBlob, type Artifact, type LedgerEvent, type Me, type Run } from '../api';
import { FINISHED, between, errorText, formatBytes, formatDuration, formatTime } from '../format';
import { Link, navigate } from '../router';
import { followEvents } from '../sse';
import { ErrorText, StatusBadge } from './common';
import { ControlVersions, usedVersions } from './ControlVersions';
import { TaskAnswers, answeredTasks } from './TaskAnswers';
import { TaskGraph } from './TaskGraph';
import { ThreadRuns } from './ThreadRuns';
import { Waterfall } from './Waterfall';
import { isWaiting, waitingDetail, waitingFor, type Waiting } from '../waiting';

// What happened between two ledger events, named for the operator (queue wait, model time, …).
// Only between two events of the same task: events of parallel tasks interleave in the ledger.
function gapLabel(prev: LedgerEvent, next: LedgerEvent): string {
  if (prev.taskId !== next.taskId) return '';
  if (prev.type === 'task.queued' && next.type === 'task.claimed') return 'queue wait';
  if (prev.type === 'task.claimed') return 'model time';
  if (prev.type === 'tool.called' && next.type === 'tool.result') return 'tool call';
  if (prev.type === 'task.awaiting_approval') return 'approval wait';
  return '';
}

// One line of the timeline: the event's notable fields ("provider local · model m · artifact
// answer.md v1").
export function describeEvent(e: LedgerEvent): string {
  const d = e.data ?? {};
  const parts: string[] = [];
  for (const k of ['name', 'tool', 'arbiter', 'policy', 'outcome', 'reason', 'error', 'by', 'actor', 'provider', 'model']) {
    const v = d[k];
    if (typeof v === 'string' && v) parts.push(`${k} ${v}`);
  }
  if (typeof d.passed === 'boolean') parts.push(d.passed ? 'passed' : 'failed');
  if (typeof d.durationMs === 'number') parts.push(`took ${formatDuration(d.durationMs)}`);
  // A completion names the artifact versions it produced (runs before migration 0039 have an
  // artifact.created event per artifact instead, described by its name above).
  if (e.type === 'task.completed' && Array.isArray(d.artifacts)) {
    for (const a of d.artifacts as unknown[]) {
      if (typeof a !== 'object' || a === null) continue;
      const { name, version } = a as Record<string, unknown>;
      if (typeof name === 'string') parts.push(`artifact ${name}${typeof version === 'number' ? ` v${version}` : ''}`);
    }
  }
  return parts.join(' · ');
}

// The control versions a task.completed event names, inline in the timeline: the snapshot and
// each item, linked to their pages.
function ControlUsed({ event }: { event: LedgerEvent }) {
  const control = event.data?.control;
  if (typeof control !== 'object' || control === null) return null;
  const c = control as Record<string, unknown>;
  const snap = typeof c.snapshotVersion === 'number' ? c.snapshotVersion : undefined;
  return (
    <span className="control-used">
      control{' '}
      {snap !== undefined && <Link to={`/control/snapshot/${snap}`}>snapshot {snap}</Link>}
      {usedVersions(c).map((u) => (
        <span key={`${u.role}-${u.name}`}>
          {' · '}{u.role} <Link to={`/control/${u.kind}/${encodeURIComponent(u.name)}`}>{u.name}</Link> v{u.version}
        </span>
      ))}
    </span>
  );
}

export function RunDetailPage({ id, me }: { id: string; me: Me }) {
  const client = useQueryClient();
  const run = useQuery({ queryKey: ['run', id], queryFn: () => api<Run>(`/v1/runs/${id}`) });
  const [live, setLive] = useState<Record<string, string>>({});
  const status = run.data?.status;
  const finished = status !== undefined && FINISHED.has(status);

  useEffect(() => {
    if (finished) return;
    const abort = new AbortController();
    followEvents(
      `/v1/runs/${id}/events`,
      (m) => {
        if (m.event === 'task.progress') {
          try {
            const e = JSON.parse(m.data) as LedgerEvent;
            const key = e.taskId ?? 'run';
            const text = typeof e.data?.text === 'string' ? e.data.text : '';
            setLive((prev) => ({ ...prev, [key]: (prev[key] ?? '') + text }));
          } catch {
            // ignore a malformed event
          }
          return;
        }
        void client.invalidateQueries({ queryKey: ['run', id] });
      },
      abort.signal,
      () => void client.invalidateQueries({ queryKey: ['run', id] }),
    );
    return () => abort.abort();
  }, [id, finished, client]);

  const cancel = useMutation({
    mutationFn: () => api<Run>(`/v1/runs/${id}/cancel`, { method: 'POST' }),
    onSuccess: (r) => client.setQueryData(['run', id], r),
  });
  const retry = useMutation({
    mutationFn: () => api<{ runId: string }>(`/v1/runs/${id}/retry`, { method: 'POST' }),
    onSuccess: (r) => navigate(`/runs/${r.runId}`),
  });

  if (run.error) return <section><h1>Run</h1><ErrorText error={run.error} /></section>;
  if (!run.data) return <section aria-busy="true"><h1>Run</h1><p>Loading…</p></section>;
  const r = run.data;
  const events = r.events ?? [];
  // Progress chunks are the streamed answer, not steps: the timeline leaves them out.
  const ledger = events.filter((e) => e.type !== 'task.progress');
  const taskName = (taskId: string) => r.tasks.find((t) => t.id === taskId)?.name ?? taskId.slice(0, 8);
  const runWaiting = r.status === 'queued' && isWaiting(r.waiting) ? r.waiting : undefined;
  // Streamed text of the tasks still answering (a task with its answer shows that instead).
  const answered = new Set(answeredTasks(r.tasks).map((t) => t.id));
  const streaming = Object.entries(live).filter(([task]) => !answered.has(task));
  return (
    <section aria-labelledby="run-title">
      <p><Link to="/">← Runs</Link></p>
      <h1 id="run-title">
        Run {r.id.slice(0, 8)} <StatusBadge status={runWaiting ? 'waiting' : r.status} />
      </h1>
      <dl className="facts">
        <dt>Id</dt><dd><code>{r.id}</code></dd>
        {r.tenantId && r.tenantId !== me.tenantId && (<><dt>Tenant</dt><dd>{r.tenantId}</dd></>)}
        <dt>Thread</dt><dd><code>{r.threadId}</code>{r.threadSeq !== undefined ? <span className="muted"> · run {r.threadSeq} of the thread</span> : null}</dd>
        {runWaiting && (<><dt>Waiting</dt><dd data-testid="run-waiting"><WaitingText waiting={runWaiting} /></dd></>)}
        <dt>Created</dt><dd>{formatTime(r.createdAt)}</dd>
        <dt>Duration</dt><dd>{r.startedAt ? between(r.startedAt, r.finishedAt) : '—'}</dd>
        {r.error && (<><dt>Error</dt><dd className="error">{errorText(r.error)}</dd></>)}
      </dl>
      {me.may.operate && (r.tenantId ?? me.tenantId) === me.tenantId && (
        <div className="actions">
          {!finished && (
            <button type="button" disabled={cancel.isPending}
              onClick={() => window.confirm('Cancel this run?') && cancel.mutate()}>Cancel</button>
          )}
          {finished && r.status !== 'succeeded' && (
            <button type="button" disabled={retry.isPending} onClick={() => retry.mutate()}>Retry</button>
          )}
        </div>
      )}
      <ErrorText error={cancel.error ?? retry.error} />

      <h2>Tasks</h2>
      <TaskGraph tasks={r.tasks} />
      <table aria-label="Tasks">
        <thead>
          <tr><th scope="col">Task</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">Attempt</th><th scope="col">Depends on</th><th scope="col">Duration</th></tr>
        </thead>
        <tbody>
          {r.tasks.map((t) => (
            <tr key={t.id}>
              <td>{t.name}</td>
              <td>{t.kind}</td>
              <td>
                {t.status === 'queued' && isWaiting(t.waiting) ? (
                  <span data-task-waiting={t.waiting.reason}><StatusBadge status="waiting" /> <WaitingText waiting={t.waiting} /></span>
                ) : <StatusBadge status={t.status} />}
              </td>
              <td>{t.attempt} / {t.maxAttempts}</td>
              <td>{(t.dependsOn ?? []).join(', ') || '—'}</td>
              <td>{t.startedAt ? between(t.startedAt, t.finishedAt) : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <ThreadRuns threadId={r.threadId} runId={r.id} />

      {!finished && streaming.length > 0 && (
        <>
          <h2>Answer (live)</h2>
          {streaming.map(([task, text]) => (
            <pre key={task} className="answer" aria-live="polite" data-testid="live-answer">{text}</pre>
          ))}
        </>
      )}

      <TaskAnswers tasks={r.tasks} />

      <h2>Artifacts</h2>
      {r.artifacts.length === 0 ? <p className="muted">None yet.</p> : r.artifacts.map((a) => <ArtifactView key={a.id} artifact={a} />)}

      <h2>Waterfall</h2>
      <Waterfall run={r} />

      <h2>Control versions used</h2>
      <ControlVersions tasks={r.tasks} events={events} />

      <h2>Timeline</h2>
      <ol className="timeline" aria-label="Ledger events">
        {ledger.map((e, i) => {
          const prev = i > 0 ? ledger[i - 1] : undefined;
          const gap = prev ? new Date(e.at).getTime() - new Date(prev.at).getTime() : 0;
          const label = prev ? gapLabel(prev, e) : '';
          return (
            <li key={e.seq}>
              {prev && <span className="gap">+{formatDuration(gap)}{label ? ` ${label}` : ''}</span>}
              <span className="etype">{e.type}</span>
              <span className="muted">{formatTime(e.at)}</span>
              {e.taskId && <span className="muted">{taskName(e.taskId)}</span>}
              <span>{describeEvent(e)}</span>
              {e.type === 'task.completed' && <ControlUsed event={e} />}
            </li>
          );
        })}
      </ol>
    </section>
  );
}

// "waiting for its thread: behind run 0190abcd", the run named linked.
function WaitingText({ waiting }: { waiting: Waiting }) {
  const detail = waitingDetail(waiting);
  return (
    <span className="waiting">
      {waitingFor(waiting)}
      {detail && <>: {detail}</>}
      {waiting.reason === 'thread' && waiting.runId && <> (<Link to={`/runs/${waiting.runId}`}>open run {waiting.runId.slice(0, 8)}</Link>)</>}
    </span>
  );
}

function ArtifactView({ artifact }: { artifact: Artifact }) {
  const versions = [...(artifact.versions ?? [])].sort((a, b) => b.version - a.version);
  const [version, setVersion] = useState(versions[0]?.version ?? 1);
  const textual = /^(text\/|application\/(json|yaml|x-ndjson))/.test(artifact.contentType);
  const url = `/v1/artifacts/${artifact.id}/versions/${version}/content`;
  const preview = useQuery({
    queryKey: ['artifact', artifact.id, version],
    queryFn: async () => (await fetchBlob(url)).text(),
    enabled: textual,
    staleTime: Infinity,
  });
  const download = async () => {
    const blob = await fetchBlob(url);
    const href = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = href;
    a.download = artifact.name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(href), 10_000);
  };
  return (
    <article className="artifact" aria-label={`Artifact ${artifact.name}`}>
      <h3>{artifact.name} <span className="muted">{artifact.contentType}</span></h3>
      <div className="actions">
        <label>
          Version
          <select value={version} onChange={(e) => setVersion(Number(e.target.value))}>
            {versions.map((v) => (
              <option key={v.version} value={v.version}>
                {v.version} ({formatBytes(v.size)}, {formatTime(v.createdAt)})
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => void download()}>Download</button>
      </div>
      {textual && <pre tabIndex={0} className="preview">{preview.data ?? (preview.error ? preview.error.message : 'Loading…')}</pre>}
    </article>
  );
}
