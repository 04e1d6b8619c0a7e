// Schedules (docs/schedules.md): every schedule the principal may see with its state, next fire
// times and last result; one schedule's recent fire times with the runs they started; and, for
// operators, "Run now" (trigger) and a backfill over a past range. The specs themselves are edited
// on the Control page (kind `schedules`), like every other control item.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, type Me } from '../api';
import { formatTime } from '../format';
import { Link } from '../router';
import { ErrorText } from './common';

// What trigger answers: the decision for that fire time.
export interface Fire {
  fireTime: string;
  origin: string;
  outcome: string;
  reason?: string;
  runId?: string;
  cancelled?: string[];
}

// A fire time as recorded (synaps.schedule_fires): the decision and the run's status now.
export interface StoredFire {
  fireTime: string;
  version: number;
  origin: string;
  status: 'started' | 'buffered' | 'skipped';
  reason: string | null;
  runId: string | null;
  runStatus: string | null;
  decidedAt: string;
  startedAt: string | null;
}

export interface Schedule {
  name: string;
  version: number;
  tenant: string;
  state: 'active' | 'paused';
  pausedReason?: string;
  spec: Record<string, unknown>;
  nextFireTimes: string[];
  lastFire: StoredFire | null;
  recentFires?: StoredFire[];
}

interface BackfillResult {
  fireTimes: number;
  started: number;
  buffered: number;
  skipped: number;
  duplicate: number;
}

// "every 5m" or "cron 0 9 * * 1-5 (Europe/Paris)": what a person reads in a list.
function cadence(spec: Record<string, unknown>): string {
  const zone = typeof spec.timezone === 'string' && spec.timezone !== 'UTC' ? ` (${spec.timezone})` : '';
  if (typeof spec.every === 'string') return `every ${spec.every}`;
  if (typeof spec.cron === 'string') return `cron ${spec.cron}${zone}`;
  return '';
}

function FireOutcome({ fire }: { fire: Fire | StoredFire | null }) {
  if (!fire) return <span className="muted">never fired</span>;
  const outcome = 'outcome' in fire ? fire.outcome : fire.status;
  const run = 'runStatus' in fire && fire.runStatus ? `, run ${fire.runStatus.replace('_', ' ')}` : '';
  return (
    <span>
      {outcome}
      {fire.reason ? ` (${fire.reason})` : ''}
      {run}
      {fire.runId ? (
        <>
          {' · '}
          <Link to={`/runs/${fire.runId}`}>run …{fire.runId.slice(-12)}</Link>
        </>
      ) : null}
    </span>
  );
}

export function SchedulesPage({ me, path }: { me: Me; path: string }) {
  const name = /^\/schedules\/([a-z0-9][a-z0-9_.-]{0,63})$/.exec(path)?.[1];
  return name ? <ScheduleDetail me={me} name={name} /> : <ScheduleList />;
}

function ScheduleList() {
  const list = useQuery({ queryKey: ['schedules'], queryFn: () => api<{ items: Schedule[] }>('/v1/schedules'), refetchInterval: 10_000 });
  return (
    <section aria-labelledby="schedules-title">
      <h1 id="schedules-title">Schedules</h1>
      <ErrorText error={list.error} />
      <table aria-label="Schedules">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Cadence</th>
            <th scope="col">State</th>
            <th scope="col">Next fire</th>
            <th scope="col">Last fire</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {list.data?.items.map((s) => (
            <tr key={s.name} data-schedule={s.name}>
              <td><Link to={`/schedules/${s.name}`}>{s.name}</Link></td>
              <td>{cadence(s.spec)}</td>
              <td><span className={`badge badge-${s.state}`}>{s.state}</span></td>
              <td>{formatTime(s.nextFireTimes[0])}</td>
              <td>{formatTime(s.lastFire?.fireTime)}</td>
              <td><FireOutcome fire={s.lastFire} /></td>
            </tr>
          ))}
          {list.data?.items.length === 0 && (
            <tr><td colSpan={6} className="muted">No schedules. Add one on the Control page (kind schedules).</td></tr>
          )}
        </tbody>
      </table>
    </section>
  );
}

function ScheduleDetail({ me, name }: { me: Me; name: string }) {
  const client = useQueryClient();
  const schedule = useQuery({ queryKey: ['schedules', name], queryFn: () => api<Schedule>(`/v1/schedules/${name}`), refetchInterval: 5_000 });
  const refresh = () => void client.invalidateQueries({ queryKey: ['schedules'] });
  const trigger = useMutation({ mutationFn: () => api<Fire>(`/v1/schedules/${name}/trigger`, { method: 'POST' }), onSuccess: refresh });
  const s = schedule.data;
  return (
    <section aria-labelledby="schedule-title">
      <p><Link to="/schedules">All schedules</Link></p>
      <h1 id="schedule-title">Schedule {name}</h1>
      <ErrorText error={schedule.error} />
      {s && (
        <>
          <dl className="facts">
            <dt>Cadence</dt><dd>{cadence(s.spec)}</dd>
            <dt>State</dt><dd><span className={`badge badge-${s.state}`}>{s.state}</span>{s.pausedReason ? ` — ${s.pausedReason}` : ''}</dd>
            <dt>Version</dt><dd><Link to={`/control/schedules/${name}`}>{s.version}</Link></dd>
            <dt>Tenant</dt><dd>{s.tenant}</dd>
            <dt>Overlap</dt><dd>{typeof s.spec.overlap === 'string' ? s.spec.overlap : 'skip'}</dd>
            <dt>Next fire times</dt>
            <dd>
              {s.nextFireTimes.length === 0 ? <span className="muted">none (paused)</span> : (
                <ul aria-label="Next fire times">{s.nextFireTimes.map((t) => <li key={t}>{formatTime(t)}</li>)}</ul>
              )}
            </dd>
          </dl>
          {me.may.operate && (
            <div className="actions">
              <button type="button" disabled={trigger.isPending} onClick={() => trigger.mutate()}>Run now</button>
              {trigger.data && <p role="status">Run now: <FireOutcome fire={trigger.data} /></p>}
              <ErrorText error={trigger.error} />
            </div>
          )}
          {me.may.operate && <BackfillForm name={name} onDone={refresh} />}
          <h2>Recent fire times</h2>
          <table aria-label="Recent fire times">
            <thead><tr><th scope="col">Fire time</th><th scope="col">Origin</th><th scope="col">Decision</th><th scope="col">Run</th></tr></thead>
            <tbody>
              {(s.recentFires ?? []).map((f) => (
                <tr key={`${f.fireTime}-${f.origin}`} data-outcome={f.status}>
                  <td>{formatTime(f.fireTime)}</td>
                  <td>{f.origin}</td>
                  <td>{f.status}{f.reason ? ` (${f.reason})` : ''}</td>
                  <td>{f.runId ? <Link to={`/runs/${f.runId}`}>…{f.runId.slice(-12)}</Link> : ''}{f.runStatus ? ` ${f.runStatus.replace('_', ' ')}` : ''}</td>
                </tr>
              ))}
              {(s.recentFires ?? []).length === 0 && <tr><td colSpan={4} className="muted">Not fired yet.</td></tr>}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

// A backfill runs every fire time in [from, to) under the schedule's overlap policy; the inputs
// are local wall-clock times of the browser, sent as RFC 3339 instants.
function BackfillForm({ name, onDone }: { name: string; onDone: () => void }) {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const backfill = useMutation({
    mutationFn: () =>
      api<BackfillResult>(`/v1/schedules/${name}/backfill`, {
        method: 'POST',
        body: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
      }),
    onSuccess: onDone,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    backfill.mutate();
  };
  const r = backfill.data;
  return (
    <form onSubmit={submit} aria-label="Backfill">
      <h2>Backfill</h2>
      <label>From <input type="datetime-local" step="1" required value={from} onChange={(e) => setFrom(e.target.value)} /></label>
      <label>To <input type="datetime-local" step="1" required value={to} onChange={(e) => setTo(e.target.value)} /></label>
      <button type="submit" disabled={backfill.isPending}>Backfill</button>
      {r && (
        <p role="status">
          Backfill: {r.fireTimes} fire times, {r.started} started, {r.buffered} buffered, {r.skipped} skipped, {r.duplicate} already fired.
        </p>
      )}
      <ErrorText error={backfill.error} />
    </form>
  );
}
