import type { ReactNode } from 'react';
import type { LedgerEvent, Run } from '../api';
import { formatDuration } from '../format';
import { Link } from '../router';
import { isWaiting, waitingDetail, type Waiting } from '../waiting';
import { usedVersions } from './ControlVersions';

// A run's ledger as a waterfall: per task, what it spent its time on, each phase a bar on one
// time axis from the run's creation to its end (or now). Phases come from pairs of ledger
// events: waiting for dependencies (task.queued → the last dependency's completion), queue wait
// (task.queued, that completion or task.retry_scheduled → task.claimed; from task.waiting on, what
// it waited for by the event's reason: "waiting for a concurrency slot" (a concurrency limit
// parked it), "waiting for its thread" (an earlier run of the thread was unfinished) or "waiting
// for a rate-limit slot" (its worker sent it back until its route's slot)), model time
// (task.claimed → the attempt's end: completed, failed, held, released or rescheduled; "model
// and tools" when it called tools), each tool call (tool.called → tool.result), approval wait
// (task.awaiting_approval → task.approved/rejected). Arbiter verdicts and the control snapshot
// a completed task used are marks at their time. A phase still open runs to now.
export type SpanKind = 'deps' | 'queue' | 'model' | 'tool' | 'approval' | 'verdict' | 'control' | 'failed';

export interface Span {
  kind: SpanKind;
  phase: string;
  start: number; // ms since the epoch
  end: number | null; // null: still going
  detail?: ReactNode;
}

export interface TaskSpans {
  taskId: string;
  name: string;
  spans: Span[];
}

interface Open {
  queuedAt?: number;
  waitedAt?: number; // task.waiting: held back by a limit, its thread or a rate limit
  waitPhase?: string;
  waitDetail?: string;
  claimedAt?: number;
  heldAt?: number;
  tools: number; // tool calls since the claim
  calls: Map<string, number>; // callId → tool.called time
}

const ATTEMPT_ENDS = new Set(['task.completed', 'task.failed', 'task.awaiting_approval', 'task.released', 'task.retry_scheduled']);

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function controlMark(e: LedgerEvent, at: number): Span | null {
  const control = e.data?.control;
  if (typeof control !== 'object' || control === null) return null;
  const c = control as Record<string, unknown>;
  const snap = typeof c.snapshotVersion === 'number' ? c.snapshotVersion : undefined;
  const items = usedVersions(c);
  return {
    kind: 'control',
    phase: 'control used',
    start: at,
    end: at,
    detail: (
      <>
        {snap !== undefined && <Link to={`/control/snapshot/${snap}`}>snapshot {snap}</Link>}
        {items.map((u) => (
          <span key={`${u.role}-${u.name}`}>
            {' · '}
            <Link to={`/control/${u.kind}/${encodeURIComponent(u.name)}`}>{u.name}</Link> v{u.version}
          </span>
        ))}
      </>
    ),
  };
}

// When each task (by name) was done: its first task.completed or task.approved.
function completions(run: Run, events: LedgerEvent[]): Map<string, number> {
  const names = new Map(run.tasks.map((t) => [t.id, t.name]));
  const done = new Map<string, number>();
  for (const e of events) {
    if ((e.type !== 'task.completed' && e.type !== 'task.approved') || !e.taskId) continue;
    const name = names.get(e.taskId);
    if (name !== undefined && !done.has(name)) done.set(name, new Date(e.at).getTime());
  }
  return done;
}

// The spans of each task of `run`, tasks in the order they started (then the run's task order);
// spans sorted by start.
export function waterfall(run: Run): TaskSpans[] {
  const created = new Date(run.createdAt).getTime();
  const byTask = new Map<string, TaskSpans>(run.tasks.map((t) => [t.id, { taskId: t.id, name: t.name, spans: [] }]));
  const open = new Map<string, Open>();
  const events = [...(run.events ?? [])].sort((a, b) => a.seq - b.seq);
  const done = completions(run, events);
  // When a task's dependencies were all done (undefined: none, or not all done yet).
  const ready = (taskId: string): number | undefined => {
    const deps = run.tasks.find((t) => t.id === taskId)?.dependsOn ?? [];
    if (deps.length === 0) return undefined;
    const times = deps.map((d) => done.get(d));
    return times.every((t) => t !== undefined) ? Math.max(...(times as number[])) : undefined;
  };
  const depsNames = (taskId: string) => (run.tasks.find((t) => t.id === taskId)?.dependsOn ?? []).join(', ');
  for (const e of events) {
    if (!e.taskId) continue;
    const at = new Date(e.at).getTime();
    let group = byTask.get(e.taskId);
    if (!group) {
      group = { taskId: e.taskId, name: e.taskId.slice(0, 8), spans: [] };
      byTask.set(e.taskId, group);
    }
    let o = open.get(e.taskId);
    if (!o) {
      o = { tools: 0, calls: new Map() };
      open.set(e.taskId, o);
    }
    const push = (s: Span) => group.spans.push(s);
    if (e.type === 'task.claimed') {
      let queued = o.queuedAt ?? created;
      const depsDone = (e.attempt ?? 1) <= 1 ? ready(e.taskId) : undefined;
      if (depsDone !== undefined && depsDone > queued) {
        push({ kind: 'deps', phase: 'waiting for dependencies', start: queued, end: Math.min(depsDone, at), detail: depsNames(e.taskId) });
        queued = Math.min(depsDone, at);
      }
      if (o.waitedAt !== undefined && o.waitedAt >= queued) {
        if (o.waitedAt > queued) push({ kind: 'queue', phase: 'queue wait', start: queued, end: o.waitedAt, detail: e.attempt ? `attempt ${e.attempt}` : undefined });
        push({ kind: 'deps', phase: o.waitPhase ?? 'waiting', start: o.waitedAt, end: at, detail: o.waitDetail });
      } else {
        push({ kind: 'queue', phase: 'queue wait', start: queued, end: at, detail: e.attempt ? `attempt ${e.attempt}` : undefined });
      }
      o.queuedAt = undefined;
      o.waitedAt = undefined;
      o.claimedAt = at;
      o.tools = 0;
    } else if (e.type === 'task.waiting') {
      const w: Waiting = isWaiting(e.data) ? e.data : { reason: 'limit' };
      if (o.claimedAt !== undefined) {
        // A rate limit sends a claimed task back to the queue: that attempt did no work.
        o.claimedAt = undefined;
        o.queuedAt = at;
      }
      o.waitedAt = at;
      o.waitPhase = w.reason === 'thread' ? 'waiting for its thread' : w.reason === 'rateLimit' ? 'waiting for a rate-limit slot' : 'waiting for a concurrency slot';
      o.waitDetail = waitingDetail(w);
    } else if (e.type === 'task.ready' && o.waitedAt !== undefined) {
      // Its thread's turn came: what follows is an ordinary queue wait.
      push({ kind: 'deps', phase: o.waitPhase ?? 'waiting', start: o.waitedAt, end: at, detail: o.waitDetail });
      o.waitedAt = undefined;
      o.queuedAt = at;
    } else if (e.type === 'tool.called') {
      o.calls.set(str(e.data?.callId), at);
    } else if (e.type === 'tool.result') {
      const ms = typeof e.data?.durationMs === 'number' ? e.data.durationMs : 0;
      const start = o.calls.get(str(e.data?.callId)) ?? at - ms;
      o.tools++;
      push({ kind: e.data?.ok === false ? 'failed' : 'tool', phase: `tool ${str(e.data?.tool)}`, start, end: at, detail: e.data?.ok === false ? 'error' : undefined });
    } else if (e.type === 'arbiter.verdict') {
      const passed = e.data?.passed === true;
      push({ kind: passed ? 'verdict' : 'failed', phase: `verdict ${str(e.data?.arbiter)}`, start: at, end: at, detail: passed ? 'passed' : `failed (onFail ${str(e.data?.onFail)})` });
    } else if (e.type === 'task.approved' || e.type === 'task.rejected') {
      const who = str(e.data?.by) || str(e.data?.actor);
      push({ kind: e.type === 'task.approved' ? 'approval' : 'failed', phase: 'approval wait', start: o.heldAt ?? at, end: at,
        detail: `${e.type === 'task.approved' ? 'approved' : 'rejected'}${who ? ` by ${who}` : ''}${str(e.data?.reason) ? `: ${str(e.data?.reason)}` : ''}` });
      o.heldAt = undefined;
    }
    if (ATTEMPT_ENDS.has(e.type) && o.claimedAt !== undefined) {
      const failed = e.type === 'task.failed' || e.type === 'task.retry_scheduled';
      const error = e.data?.error;
      const why = typeof error === 'string' ? error : typeof error === 'object' && error !== null ? str((error as Record<string, unknown>).message) : '';
      push({ kind: failed ? 'failed' : 'model', phase: o.tools > 0 ? 'model and tools' : 'model time', start: o.claimedAt, end: at,
        detail: [e.attempt ? `attempt ${e.attempt}` : '', failed ? (e.type === 'task.retry_scheduled' ? 'failed, retried' : 'failed') + (why ? `: ${why}` : '') : ''].filter(Boolean).join(' · ') || undefined });
      o.claimedAt = undefined;
    }
    if (e.type === 'task.queued' || e.type === 'task.retry_scheduled') o.queuedAt = at;
    if (e.type === 'task.awaiting_approval') o.heldAt = at;
    if (e.type === 'task.completed') {
      const mark = controlMark(e, at);
      if (mark) push(mark);
    }
  }
  for (const [taskId, o] of open) {
    const group = byTask.get(taskId);
    if (!group) continue;
    if (o.queuedAt !== undefined) {
      const deps = run.tasks.find((t) => t.id === taskId)?.dependsOn ?? [];
      const depsDone = ready(taskId);
      if (deps.length > 0 && (depsDone === undefined || depsDone > o.queuedAt)) {
        group.spans.push({ kind: 'deps', phase: 'waiting for dependencies', start: o.queuedAt, end: depsDone ?? null, detail: depsNames(taskId) });
      }
      const from = deps.length > 0 ? depsDone : o.queuedAt;
      if (from !== undefined && o.waitedAt !== undefined && o.waitedAt >= Math.max(from, o.queuedAt)) {
        const start = Math.max(from, o.queuedAt);
        if (o.waitedAt > start) group.spans.push({ kind: 'queue', phase: 'queue wait', start, end: o.waitedAt });
        group.spans.push({ kind: 'deps', phase: o.waitPhase ?? 'waiting', start: o.waitedAt, end: null, detail: o.waitDetail });
      } else if (from !== undefined) {
        group.spans.push({ kind: 'queue', phase: 'queue wait', start: Math.max(from, o.queuedAt), end: null });
      }
    }
    if (o.claimedAt !== undefined) group.spans.push({ kind: 'model', phase: o.tools > 0 ? 'model and tools' : 'model time', start: o.claimedAt, end: null });
    if (o.heldAt !== undefined) group.spans.push({ kind: 'approval', phase: 'approval wait', start: o.heldAt, end: null });
  }
  const groups = [...byTask.values()];
  for (const g of groups) g.spans.sort((a, b) => a.start - b.start);
  const order = new Map(groups.map((g, i) => [g.taskId, i]));
  const firstWork = (g: TaskSpans) => g.spans.find((s) => s.kind !== 'deps' && s.kind !== 'queue')?.start ?? Infinity;
  groups.sort((a, b) => firstWork(a) - firstWork(b) || (order.get(a.taskId) ?? 0) - (order.get(b.taskId) ?? 0));
  return groups;
}

const WIDTH = 1000;

export function Waterfall({ run }: { run: Run }) {
  const groups = waterfall(run);
  const now = Date.now();
  const t0 = new Date(run.createdAt).getTime();
  const ends = groups.flatMap((g) => g.spans.map((s) => s.end ?? now));
  const t1 = Math.max(run.finishedAt ? new Date(run.finishedAt).getTime() : now, ...ends, t0 + 1);
  const scale = WIDTH / (t1 - t0);
  if (groups.every((g) => g.spans.length === 0)) return <p className="muted">No task has been claimed yet.</p>;
  return (
    <table className="waterfall" aria-label="Waterfall">
      <caption className="sr-only">Each task's phases on one time axis from the run's creation ({formatDuration(t1 - t0)} in all)</caption>
      <thead>
        <tr>
          <th scope="col">Task</th>
          <th scope="col">Phase</th>
          <th scope="col">Starts</th>
          <th scope="col">Takes</th>
          <th scope="col" className="wf-axis">0 → {formatDuration(t1 - t0)}</th>
        </tr>
      </thead>
      {groups.filter((g) => g.spans.length > 0).map((g) => (
        <tbody key={g.taskId} data-waterfall-task={g.name}>
          {g.spans.map((s, i) => {
            const x = Math.max(0, (s.start - t0) * scale);
            const end = s.end ?? now;
            const mark = s.kind === 'verdict' || s.kind === 'control';
            const w = mark ? 4 : Math.max(3, (end - s.start) * scale);
            return (
              <tr key={i} data-phase={s.phase}>
                {i === 0 && <th scope="rowgroup" rowSpan={g.spans.length}>{g.name}</th>}
                <td>{s.phase}{s.detail ? <span className="muted"> · {s.detail}</span> : null}</td>
                <td className="num">+{formatDuration(s.start - t0)}</td>
                <td className="num">{mark ? '' : s.end === null ? `${formatDuration(end - s.start)}, ongoing` : formatDuration(end - s.start)}</td>
                <td className="wf-bar">
                  <svg viewBox={`0 0 ${WIDTH} 12`} preserveAspectRatio="none" aria-hidden="true" focusable="false">
                    <rect className={`wf-${s.kind}`} x={Math.min(x, WIDTH - w)} y="1" width={w} height="10" rx="2" />
                  </svg>
                </td>
              </tr>
            );
          })}
        </tbody>
      ))}
    </table>
  );
}
