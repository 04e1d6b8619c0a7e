import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, type Me, type Page, type Run, type RunSummary } from '../api';
import { formatTime } from '../format';
import { Link } from '../router';
import { ErrorText } from './common';

interface Held {
  run: Run;
  taskId: string;
  taskName: string;
  text: string;
  verdicts: unknown;
  since: string;
}

async function loadHeld(): Promise<Held[]> {
  const runs = await api<Page<RunSummary>>('/v1/runs?status=awaiting_approval&limit=100');
  const full = await Promise.all(runs.items.map((r) => api<Run>(`/v1/runs/${r.id}`)));
  const held: Held[] = [];
  for (const run of full) {
    for (const t of run.tasks) {
      if (t.status !== 'awaiting_approval') continue;
      const ev = [...run.events].reverse().find((e) => e.taskId === t.id && e.type === 'task.awaiting_approval');
      held.push({
        run,
        taskId: t.id,
        taskName: t.name,
        text: typeof ev?.data?.text === 'string' ? ev.data.text : '',
        verdicts: ev?.data?.verdicts ?? [],
        since: ev?.at ?? run.createdAt,
      });
    }
  }
  return held;
}

export function ApprovalsPage({ me }: { me: Me }) {
  const held = useQuery({ queryKey: ['runs', 'approvals'], queryFn: loadHeld });
  return (
    <section aria-labelledby="approvals-title">
      <h1 id="approvals-title">Approvals</h1>
      <ErrorText error={held.error} />
      {held.data?.length === 0 && <p className="muted">Nothing waits for a person.</p>}
      {held.data?.map((h) => <HeldTask key={h.taskId} held={h} me={me} />)}
    </section>
  );
}

function HeldTask({ held, me }: { held: Held; me: Me }) {
  const client = useQueryClient();
  const [reason, setReason] = useState('');
  const decide = useMutation({
    mutationFn: (approve: boolean) =>
      api<Run>(`/v1/tasks/${held.taskId}/${approve ? 'approve' : 'reject'}`, {
        method: 'POST',
        body: reason ? { reason } : {},
      }),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['runs'] }),
  });
  const reasonId = `reason-${held.taskId}`;
  return (
    <article className="card held" aria-label={`Task ${held.taskName} of run ${held.run.id.slice(0, 8)}`}>
      <h2>
        <Link to={`/runs/${held.run.id}`}>Run {held.run.id.slice(0, 8)}</Link> · task {held.taskName}
      </h2>
      <p className="muted">Held since {formatTime(held.since)}</p>
      <h3>Answer</h3>
      <pre tabIndex={0} className="answer">{held.text || '(empty)'}</pre>
      <h3>Verdicts</h3>
      <pre tabIndex={0} className="preview">{JSON.stringify(held.verdicts, null, 2)}</pre>
      {me.may.operate && (
        <div className="decide">
          <label htmlFor={reasonId}>Reason</label>
          <input id={reasonId} value={reason} maxLength={2000} onChange={(e) => setReason(e.target.value)} />
          <button type="button" disabled={decide.isPending} onClick={() => decide.mutate(true)}>Approve</button>
          <button type="button" className="danger" disabled={decide.isPending} onClick={() => decide.mutate(false)}>Reject</button>
        </div>
      )}
      <ErrorText error={decide.error} />
    </article>
  );
}
