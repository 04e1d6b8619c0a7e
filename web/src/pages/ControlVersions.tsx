import type { LedgerEvent, Task } from '../api';
import { Link } from '../router';

// The control versions each task used, from its task.completed event (`data.control`:
// {snapshotVersion, prompt, skill, route, routeUsed: {name, version}, tools, arbiters: [...]}),
// each linked to that version of the item, and the snapshot to its page.
interface Used {
  kind: string;
  name: string;
  version: number;
  role: string;
}

const KINDS: [string, string][] = [
  ['prompt', 'prompts'],
  ['skill', 'skills'],
  ['route', 'routes'],
  ['routeUsed', 'routes'],
  ['tools', 'tools'],
  ['arbiters', 'arbiters'],
];

function ref(v: unknown): { name: string; version: number } | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  return typeof o.name === 'string' && typeof o.version === 'number' ? { name: o.name, version: o.version } : null;
}

export function usedVersions(control: Record<string, unknown>): Used[] {
  const out: Used[] = [];
  for (const [key, kind] of KINDS) {
    const v = control[key];
    for (const item of Array.isArray(v) ? v : [v]) {
      const r = ref(item);
      if (r) out.push({ kind, ...r, role: key === 'routeUsed' ? 'route (answered)' : key });
    }
  }
  return out;
}

export function ControlVersions({ tasks, events }: { tasks: Task[]; events: LedgerEvent[] }) {
  const rows = events
    .filter((e) => e.type === 'task.completed' && typeof e.data?.control === 'object' && e.data.control !== null)
    .map((e) => ({
      event: e,
      task: tasks.find((t) => t.id === e.taskId)?.name ?? e.taskId ?? '',
      control: e.data.control as Record<string, unknown>,
    }));
  if (rows.length === 0) return <p className="muted">No task has completed yet.</p>;
  return (
    <table aria-label="Control versions used">
      <thead>
        <tr><th scope="col">Task</th><th scope="col">Snapshot</th><th scope="col">Items (kind, name, version)</th></tr>
      </thead>
      <tbody>
        {rows.map(({ event, task, control }) => {
          const snap = typeof control.snapshotVersion === 'number' ? control.snapshotVersion : undefined;
          return (
            <tr key={event.seq} data-control-task={task}>
              <td>{task}{event.attempt ? <span className="muted"> (attempt {event.attempt})</span> : null}</td>
              <td>{snap ? <Link to={`/control/snapshot/${snap}`}>version {snap}</Link> : '—'}</td>
              <td>
                {usedVersions(control).length === 0 && <span className="muted">no prompt, skill, route, tool or arbiter</span>}
                <ul className="plain">
                  {usedVersions(control).map((u) => (
                    <li key={`${u.role}-${u.name}`}>
                      <span className="muted">{u.role}</span>{' '}
                      <Link to={`/control/${u.kind}/${encodeURIComponent(u.name)}`}>{u.name}</Link> v{u.version}
                    </li>
                  ))}
                </ul>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
