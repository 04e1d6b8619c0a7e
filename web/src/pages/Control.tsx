import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, query, type Me } from '../api';
import { formatTime } from '../format';
import { Link, navigate } from '../router';
import { ErrorText } from './common';
import { SnapshotView } from './Snapshot';

const KINDS = ['prompts', 'skills', 'tools', 'routes', 'arbiters', 'schedules', 'concurrency'];

interface Item {
  kind: string;
  name: string;
  version: number;
  spec: unknown;
  deleted: boolean;
  action: string;
  actor: string;
  reason: string;
  at: string;
}

interface Change {
  id: number;
  kind: string;
  name: string;
  version: number;
  action: string;
  actor: string;
  reason: string;
  at: string;
}

export function ControlPage({ me, path }: { me: Me; path: string }) {
  const [, , kind = 'prompts', name] = path.split('/');
  return (
    <section aria-labelledby="control-title">
      <h1 id="control-title">Control</h1>
      <nav aria-label="Kinds" className="tabs">
        <ul>
          {KINDS.map((k) => (
            <li key={k}>
              <Link to={`/control/${k}`} aria-current={k === kind ? 'page' : undefined}>{k}</Link>
            </li>
          ))}
          <li>
            <Link to="/control/snapshot" aria-current={kind === 'snapshot' ? 'page' : undefined}>snapshot</Link>
          </li>
        </ul>
      </nav>
      {kind === 'snapshot' ? <SnapshotView version={name && /^[0-9]+$/.test(name) ? Number(name) : undefined} /> : KINDS.includes(kind) ? (name ? <ItemView kind={kind} name={name} me={me} /> : <KindList kind={kind} me={me} />) : <p>No kind {kind}.</p>}
    </section>
  );
}

function KindList({ kind, me }: { kind: string; me: Me }) {
  const list = useQuery({ queryKey: ['control', kind], queryFn: () => api<{ items: Item[] }>(`/v1/control/${kind}`) });
  const [newName, setNewName] = useState('');
  return (
    <>
      <h2>{kind}</h2>
      <ErrorText error={list.error} />
      <table>
        <thead><tr><th scope="col">Name</th><th scope="col">Version</th><th scope="col">Changed by</th><th scope="col">Reason</th><th scope="col">At</th></tr></thead>
        <tbody>
          {list.data?.items.map((i) => (
            <tr key={i.name}>
              <td><Link to={`/control/${kind}/${i.name}`}>{i.name}</Link></td>
              <td>{i.version}</td>
              <td>{i.actor}</td>
              <td>{i.reason}</td>
              <td>{formatTime(i.at)}</td>
            </tr>
          ))}
          {list.data?.items.length === 0 && <tr><td colSpan={5} className="muted">No {kind} yet.</td></tr>}
        </tbody>
      </table>
      {me.may.control && (
        <form className="inline" onSubmit={(e) => { e.preventDefault(); if (newName) navigate(`/control/${kind}/${newName}?edit=1`); }}>
          <label htmlFor="new-name">New item name</label>
          <input id="new-name" value={newName} onChange={(e) => setNewName(e.target.value.trim())} pattern="[a-z0-9][a-z0-9_.\-]{0,63}" />
          <button type="submit">Create</button>
        </form>
      )}
    </>
  );
}

function pretty(v: unknown): string {
  return JSON.stringify(v, null, 2) ?? '';
}

// Line diff (longest common subsequence): specs are small, so O(n·m) is fine.
export function diffLines(a: string, b: string): { op: ' ' | '-' | '+'; line: string }[] {
  const x = a.split('\n');
  const y = b.split('\n');
  const n = x.length;
  const m = y.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: { op: ' ' | '-' | '+'; line: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      out.push({ op: ' ', line: x[i]! });
      i++;
      j++;
    } else if (j < m && (i >= n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) {
      out.push({ op: '+', line: y[j]! });
      j++;
    } else {
      out.push({ op: '-', line: x[i]! });
      i++;
    }
  }
  return out;
}

function ItemView({ kind, name, me }: { kind: string; name: string; me: Me }) {
  const client = useQueryClient();
  const startEditing = new URLSearchParams(window.location.search).has('edit');
  const current = useQuery({
    queryKey: ['control', kind, name],
    queryFn: () => api<Item>(`/v1/control/${kind}/${name}`),
    retry: false,
  });
  const history = useQuery({
    queryKey: ['control', kind, name, 'history'],
    queryFn: () => api<{ items: Change[] }>('/v1/control/changes' + query({ kind, name, limit: '100' })),
  });
  const versions = history.data?.items.map((c) => c.version) ?? [];
  const latest = current.data?.version;
  // Until the operator picks versions, the diff follows the newest change.
  const [picked, setPicked] = useState<{ left?: number; right?: number }>({});
  const left = picked.left ?? (latest === undefined ? undefined : Math.max(1, latest - 1));
  const right = picked.right ?? latest;
  const setLeft = (v: number) => setPicked((p) => ({ ...p, left: v }));
  const setRight = (v: number) => setPicked((p) => ({ ...p, right: v }));
  const versionQuery = (v: number | undefined) => ({
    queryKey: ['control', kind, name, 'v', v],
    queryFn: () => api<Item>(`/v1/control/${kind}/${name}?version=${v}`),
    enabled: v !== undefined,
    staleTime: Infinity,
  });
  const a = useQuery(versionQuery(left));
  const b = useQuery(versionQuery(right));

  const [editing, setEditing] = useState(startEditing);
  const [draft, setDraft] = useState('');
  const [reason, setReason] = useState('');
  useEffect(() => {
    if (current.data) setDraft(pretty(current.data.spec));
    else if (current.error) setDraft('{\n}');
  }, [current.data, current.error]);
  const refresh = () => void client.invalidateQueries({ queryKey: ['control', kind] });
  const save = useMutation({
    mutationFn: (spec: unknown) => api(`/v1/control/${kind}/${name}`, { method: 'PUT', body: { spec, reason } }),
    onSuccess: () => {
      setEditing(false);
      setReason('');
      refresh();
    },
  });
  const [parseError, setParseError] = useState('');
  const onSave = (e: FormEvent) => {
    e.preventDefault();
    try {
      const spec: unknown = JSON.parse(draft);
      setParseError('');
      save.mutate(spec);
    } catch (err) {
      setParseError('The spec is not valid JSON: ' + String(err));
    }
  };
  const [rollbackTo, setRollbackTo] = useState('');
  const [rollbackReason, setRollbackReason] = useState('');
  const rollback = useMutation({
    mutationFn: () => api(`/v1/control/${kind}/${name}/rollback`, { method: 'POST', body: { toVersion: Number(rollbackTo), reason: rollbackReason } }),
    onSuccess: () => {
      setRollbackReason('');
      refresh();
    },
  });
  const saveErr = save.error instanceof ApiError ? save.error : undefined;
  const specErr = saveErr && (saveErr.field ?? '').startsWith('spec') ? saveErr : undefined;
  const reasonErr = saveErr && saveErr.field === 'reason' ? saveErr : undefined;
  const notFound = current.error instanceof ApiError && current.error.status === 404;

  return (
    <>
      <h2>{kind}/{name} {latest !== undefined && <span className="muted">version {latest}</span>}</h2>
      {!notFound && <ErrorText error={current.error} />}
      {notFound && !editing && <p className="muted">No such item yet.</p>}
      {!editing && current.data && <pre tabIndex={0} className="preview" aria-label="Current spec">{pretty(current.data.spec)}</pre>}
      {me.may.control && !editing && (
        <button type="button" onClick={() => setEditing(true)}>{notFound ? 'Create' : 'Edit'}</button>
      )}
      {editing && (
        <form className="card form" onSubmit={onSave} aria-label="Edit spec">
          <div className="field">
            <label htmlFor="spec">Spec (JSON)</label>
            <textarea id="spec" rows={14} value={draft} onChange={(e) => setDraft(e.target.value)} spellCheck={false}
              aria-invalid={specErr || parseError ? true : undefined} aria-describedby={specErr || parseError ? 'spec-error' : undefined} />
            {(specErr || parseError) && <span id="spec-error" className="error" role="alert">{parseError || `${specErr?.field}: ${specErr?.message}`}</span>}
          </div>
          <div className="field">
            <label htmlFor="edit-reason">Reason</label>
            <input id="edit-reason" value={reason} onChange={(e) => setReason(e.target.value)}
              aria-invalid={reasonErr ? true : undefined} aria-describedby={reasonErr ? 'edit-reason-error' : undefined} />
            {reasonErr && <span id="edit-reason-error" className="error" role="alert">{reasonErr.message}</span>}
          </div>
          {saveErr && !specErr && !reasonErr && <p className="error" role="alert">{saveErr.message}</p>}
          <div className="actions">
            <button type="submit" disabled={save.isPending}>Save</button>
            <button type="button" className="link" onClick={() => setEditing(false)}>Discard</button>
          </div>
        </form>
      )}

      <h3>History</h3>
      <ErrorText error={history.error} />
      <table aria-label="History">
        <thead><tr><th scope="col">Version</th><th scope="col">Action</th><th scope="col">Actor</th><th scope="col">Reason</th><th scope="col">At</th></tr></thead>
        <tbody>
          {history.data?.items.map((c) => (
            <tr key={c.id}><td>{c.version}</td><td>{c.action}</td><td>{c.actor}</td><td>{c.reason}</td><td>{formatTime(c.at)}</td></tr>
          ))}
        </tbody>
      </table>

      {versions.length > 1 && (
        <>
          <h3>Diff</h3>
          <div className="actions">
            <label>From version
              <select value={left ?? ''} onChange={(e) => setLeft(Number(e.target.value))}>
                {versions.map((v) => <option key={v} value={v}>{v}</option>)}
              </select>
            </label>
            <label>To version
              <select value={right ?? ''} onChange={(e) => setRight(Number(e.target.value))}>
                {versions.map((v) => <option key={v} value={v}>{v}</option>)}
              </select>
            </label>
          </div>
          {a.data && b.data && (
            <pre tabIndex={0} className="diff" aria-label="Diff">
              {diffLines(pretty(a.data.spec), pretty(b.data.spec)).map((d, i) => (
                <span key={i} className={d.op === '+' ? 'add' : d.op === '-' ? 'del' : ''}>{d.op} {d.line}{'\n'}</span>
              ))}
            </pre>
          )}
          {me.may.control && (
            <form className="inline" onSubmit={(e) => { e.preventDefault(); rollback.mutate(); }} aria-label="Roll back">
              <label htmlFor="rollback-to">Roll back to version</label>
              <select id="rollback-to" value={rollbackTo} onChange={(e) => setRollbackTo(e.target.value)}>
                <option value="">choose</option>
                {versions.filter((v) => v !== latest).map((v) => <option key={v} value={v}>{v}</option>)}
              </select>
              <label htmlFor="rollback-reason">Reason</label>
              <input id="rollback-reason" value={rollbackReason} onChange={(e) => setRollbackReason(e.target.value)} />
              <button type="submit" disabled={!rollbackTo || rollback.isPending}>Roll back</button>
              <ErrorText error={rollback.error} />
            </form>
          )}
        </>
      )}
    </>
  );
}
