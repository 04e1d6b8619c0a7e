import type { Task } from '../api';

// A run's tasks as a graph: one column per depth (a task sits one column right of its deepest
// dependency), an arrow from each dependency to its dependent, so fan-out and joins read left
// to right. Drawn as SVG by hand (no layout library). Dependencies name tasks by name; a name
// the run does not have is ignored. The task table stays the textual equivalent.
const NODE_W = 168;
const NODE_H = 40;
const COL_GAP = 56;
const ROW_GAP = 16;
const PAD = 8;

interface Placed {
  task: Task;
  col: number;
  row: number;
}

export function layout(tasks: Task[]): { placed: Placed[]; cols: number; rows: number } {
  const byName = new Map(tasks.map((t) => [t.name, t]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (t: Task): number => {
    const known = depth.get(t.name);
    if (known !== undefined) return known;
    if (visiting.has(t.name)) return 0; // a cycle cannot be run; draw it flat rather than loop
    visiting.add(t.name);
    let d = 0;
    for (const dep of t.dependsOn ?? []) {
      const parent = byName.get(dep);
      if (parent) d = Math.max(d, depthOf(parent) + 1);
    }
    visiting.delete(t.name);
    depth.set(t.name, d);
    return d;
  };
  const rowsPerCol: number[] = [];
  const placed = tasks.map((task) => {
    const col = depthOf(task);
    const row = rowsPerCol[col] ?? 0;
    rowsPerCol[col] = row + 1;
    return { task, col, row };
  });
  return { placed, cols: rowsPerCol.length, rows: Math.max(0, ...rowsPerCol.map((n) => n ?? 0)) };
}

const x = (col: number) => PAD + col * (NODE_W + COL_GAP);
const y = (row: number) => PAD + row * (NODE_H + ROW_GAP);

function short(name: string): string {
  return name.length > 20 ? name.slice(0, 19) + '…' : name;
}

export function TaskGraph({ tasks }: { tasks: Task[] }) {
  if (tasks.length === 0) return null;
  const { placed, cols, rows } = layout(tasks);
  const at = new Map(placed.map((p) => [p.task.name, p]));
  const width = PAD * 2 + cols * NODE_W + (cols - 1) * COL_GAP;
  const height = PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP;
  const edges = placed.flatMap((p) =>
    (p.task.dependsOn ?? []).flatMap((dep) => {
      const from = at.get(dep);
      return from ? [{ from, to: p }] : [];
    }),
  );
  const label = `Task graph: ${tasks.length} task${tasks.length === 1 ? '' : 's'}, ${edges.length} dependenc${edges.length === 1 ? 'y' : 'ies'}`;
  return (
    <figure className="graph">
      <svg role="img" aria-label={label} width={width} height={height} viewBox={`0 0 ${width} ${height}`}>
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" className="graph-arrow" />
          </marker>
        </defs>
        {edges.map(({ from, to }) => {
          const x1 = x(from.col) + NODE_W;
          const y1 = y(from.row) + NODE_H / 2;
          const x2 = x(to.col);
          const y2 = y(to.row) + NODE_H / 2;
          const mid = (x1 + x2) / 2;
          return (
            <path key={`${from.task.id}-${to.task.id}`} className="graph-edge" markerEnd="url(#arrow)"
              data-edge={`${from.task.name}->${to.task.name}`}
              d={`M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`} />
          );
        })}
        {placed.map(({ task, col, row }) => (
          <g key={task.id} className={`graph-node graph-${task.status}`} data-task={task.name}
            transform={`translate(${x(col)} ${y(row)})`}>
            <title>{`${task.name}: ${task.status}${task.dependsOn?.length ? `, after ${task.dependsOn.join(', ')}` : ''}`}</title>
            <rect width={NODE_W} height={NODE_H} rx="6" />
            <text x="10" y="17" className="graph-name">{short(task.name)}</text>
            <text x="10" y="32" className="graph-status">{task.status.replace('_', ' ')} · {task.kind}</text>
          </g>
        ))}
      </svg>
    </figure>
  );
}
