import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, query, type Me, type Page, type RunSummary } from '../api';
import { FINISHED, STATUSES, between, formatTime } from '../format';
import { Link, navigate, useLocation } from '../router';
import { StatusBadge } from './common';

const FILTER_KEYS = ['status', 'kind', 'threadId', 'tag', 'text', 'metadata', 'createdAfter', 'createdBefore'] as const;
export type Filter = Partial<Record<(typeof FILTER_KEYS)[number], string>>;

interface BulkResult {
  cancelled: string[];
  skipped: { id: string; code: string; message: string }[];
  more: boolean;
}

interface RetryResult {
  retried: { runId: string; retryOf: string }[];
  skipped: { id: string; code: string; message: string }[];
  more: boolean;
  nextCursor?: string;
}

const plural = (n: number) => `${n} run${n === 1 ? '' : 's'}`;

// Retries by filter page by page (each call at most 1000 runs, `nextCursor` onwards): the old
// runs stay failed or cancelled, so calling again without the cursor would retry them twice.
async function retryAll(filter: Filter): Promise<{ retried: number; skipped: number; more: boolean }> {
  let retried = 0;
  let skipped = 0;
  let cursor: string | undefined;
  for (let call = 0; call < 20; call++) {
    const r: RetryResult = await api<RetryResult>('/v1/runs/retry', { method: 'POST', body: cursor ? { filter, cursor } : { filter } });
    retried += r.retried.length;
    skipped += r.skipped.length;
    if (!r.more || !r.nextCursor) return { retried, skipped, more: false };
    cursor = r.nextCursor;
  }
  return { retried, skipped, more: true };
}

function toIso(local: string | undefined): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

// The filter as the page's URL has it (the time range in the browser's local time) → as the API
// takes it (ISO 8601 instants; a time that does not parse is dropped).
export function apiFilterOf(filter: Filter): Filter {
  return { ...filter, createdAfter: toIso(filter.createdAfter), createdBefore: toIso(filter.createdBefore) };
}

// One page of the list: GET /v1/runs with the filter, the tenant (installation scope: another
// tenant or `*`; '' for the token's own) and the page's cursor; empty values are left out.
export function runsPath(apiFilter: Filter, tenant: string, cursor: string | undefined): string {
  return '/v1/runs' + query({ ...apiFilter, tenant: tenant || undefined, cursor, limit: '50' });
}

export function RunsPage({ me }: { me: Me }) {
  const { search } = useLocation();
  const filter: Filter = {};
  for (const k of FILTER_KEYS) {
    const v = search.get(k);
    if (v) filter[k] = v;
  }
  // The installation scope may read other tenants' runs (`tenant=`, `*` for every tenant); bulk
  // actions stay in the token's own tenant, so they are offered only there.
  const tenant = me.installation ? (search.get('tenant') ?? '') : '';
  const ownTenant = tenant === '' || tenant === me.tenantId;
  const operate = me.may.operate && ownTenant;
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [notice, setNotice] = useState<string>('');
  const client = useQueryClient();
  const apiFilter = apiFilterOf(filter);
  const runs = useQuery({
    queryKey: ['runs', 'list', apiFilter, tenant, cursor],
    queryFn: () => api<Page<RunSummary>>(runsPath(apiFilter, tenant, cursor)),
    placeholderData: (prev) => prev,
  });
  const cancel = useMutation({
    mutationFn: (body: { runIds: string[] } | { filter: Filter }) =>
      api<BulkResult>('/v1/runs/cancel', { method: 'POST', body }),
    onSuccess: (r) => {
      setSelected(new Set());
      setNotice(`Cancelled ${plural(r.cancelled.length)}` +
        (r.skipped.length ? `; ${r.skipped.length} skipped (already finished)` : '') +
        (r.more ? '; more match: run it again' : '') + '.');
      void client.invalidateQueries({ queryKey: ['runs'] });
    },
    onError: (e) => setNotice(`Cancel failed: ${e.message}`),
  });
  const retry = useMutation({
    mutationFn: async (body: { runIds: string[] } | { filter: Filter }) => {
      if ('filter' in body) return retryAll(body.filter);
      const r = await api<RetryResult>('/v1/runs/retry', { method: 'POST', body });
      return { retried: r.retried.length, skipped: r.skipped.length, more: false };
    },
    onSuccess: (r) => {
      setSelected(new Set());
      setNotice(`Retried ${plural(r.retried)}` +
        (r.skipped ? `; ${r.skipped} skipped (unfinished or not found)` : '') +
        (r.more ? '; more match: narrow the filter' : '') + '.');
      void client.invalidateQueries({ queryKey: ['runs'] });
    },
    onError: (e) => setNotice(`Retry failed: ${e.message}`),
  });
  const busy = cancel.isPending || retry.isPending;

  const applyFilter = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget);
    const next: Record<string, string | undefined> = {};
    for (const k of FILTER_KEYS) {
      const v = String(data.get(k) ?? '').trim();
      if (v) next[k] = v;
    }
    const t = String(data.get('tenant') ?? '').trim();
    if (me.installation && t) next.tenant = t;
    setCursors([]);
    setSelected(new Set());
    navigate('/' + query(next), true);
  };
  const items = runs.data?.items ?? [];
  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  const chosen = items.filter((r) => selected.has(r.id));
  const cancelSelected = () => {
    if (window.confirm(`Cancel ${plural(selected.size)} (the unfinished ones)?`)) {
      cancel.mutate({ runIds: [...selected] });
    }
  };
  const retrySelected = () => {
    if (window.confirm(`Retry ${plural(selected.size)} (the finished ones), each as a new run?`)) {
      retry.mutate({ runIds: [...selected] });
    }
  };
  const described = Object.entries(filter).map(([k, v]) => `${k}=${v}`).join(', ') || 'no filter';
  const matching = () => Object.fromEntries(Object.entries(apiFilter).filter(([, v]) => v)) as Filter;
  const cancelMatching = () => {
    if (window.confirm(`Cancel every unfinished run that matches this filter (${described})?`)) {
      cancel.mutate({ filter: matching() });
    }
  };
  const retryMatching = () => {
    if (window.confirm(`Retry every failed or cancelled run that matches this filter (${described}), each as a new run?`)) {
      retry.mutate({ filter: matching() });
    }
  };

  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title">Runs</h1>
      <form className="filters" onSubmit={applyFilter} aria-label="Filter runs">
        <label>
          Status
          <select name="status" defaultValue={filter.status ?? ''}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Kind
          <select name="kind" defaultValue={filter.kind ?? ''}>
            <option value="">any</option>
            <option value="prompt">prompt</option>
            <option value="agent">agent</option>
          </select>
        </label>
        <label>
          Text
          <input name="text" type="search" defaultValue={filter.text ?? ''} />
        </label>
        <label>
          Tag
          <input name="tag" defaultValue={filter.tag ?? ''} />
        </label>
        <label>
          Metadata
          <input name="metadata" defaultValue={filter.metadata ?? ''} placeholder="key=value" size={14}
            aria-describedby="metadata-hint" />
        </label>
        <span id="metadata-hint" className="sr-only">A metadata key and its value, as key=value.</span>
        <label>
          Thread
          <input name="threadId" defaultValue={filter.threadId ?? ''} size={14} />
        </label>
        <label>
          From
          <input name="createdAfter" type="datetime-local" defaultValue={filter.createdAfter ?? ''} />
        </label>
        <label>
          To
          <input name="createdBefore" type="datetime-local" defaultValue={filter.createdBefore ?? ''} />
        </label>
        {me.installation && (
          <>
            <label>
              Tenant
              <input name="tenant" defaultValue={tenant} size={12} placeholder="yours; * = all"
                aria-describedby="tenant-hint" />
            </label>
            <span id="tenant-hint" className="sr-only">Empty: your tenant. A tenant id, or * for every tenant.</span>
          </>
        )}
        <button type="submit">Apply</button>
      </form>
      {operate && (
        <div className="actions" role="group" aria-label="Bulk actions">
          <button type="button" disabled={busy || !chosen.some((r) => !FINISHED.has(r.status))} onClick={cancelSelected}>
            Cancel selected ({selected.size})
          </button>
          <button type="button" disabled={busy} onClick={cancelMatching}>
            Cancel all matching
          </button>
          <button type="button" disabled={busy || !chosen.some((r) => FINISHED.has(r.status))} onClick={retrySelected}>
            Retry selected ({selected.size})
          </button>
          <button type="button" disabled={busy} onClick={retryMatching}>
            Retry all matching
          </button>
        </div>
      )}
      <p className="notice" role="status" aria-live="polite">{notice}</p>
      {runs.error && <p className="error" role="alert">{runs.error.message}</p>}
      <table className="runs">
        <caption className="sr-only">Runs, newest first; updated live</caption>
        <thead>
          <tr>
            {operate && (
              <th scope="col">
                <input
                  type="checkbox"
                  aria-label="Select all runs on this page"
                  checked={items.length > 0 && items.every((r) => selected.has(r.id))}
                  onChange={(e) => setSelected(e.target.checked ? new Set(items.map((r) => r.id)) : new Set())}
                />
              </th>
            )}
            <th scope="col">Status</th>
            <th scope="col">Run</th>
            <th scope="col">Kind</th>
            <th scope="col">Tags</th>
            <th scope="col">Tenant</th>
            <th scope="col">Thread</th>
            <th scope="col">Created</th>
            <th scope="col">Duration</th>
          </tr>
        </thead>
        <tbody>
          {items.map((r) => (
            <tr key={r.id} data-run-id={r.id} data-status={r.status}>
              {operate && (
                <td>
                  <input
                    type="checkbox"
                    aria-label={r.title ? `Select ${r.title}, run ${r.id}` : `Select run ${r.id}`}
                    checked={selected.has(r.id)}
                    onChange={() => toggle(r.id)}
                  />
                </td>
              )}
              <td><StatusBadge status={r.status} /></td>
              <td>
                <Link to={`/runs/${r.id}`}>{r.title || r.id.slice(0, 8)}</Link>
              </td>
              <td>{r.kind ?? ''}</td>
              <td>{(r.tags ?? []).join(', ')}</td>
              <td>{r.tenantId ?? me.tenantId}</td>
              <td>
                <Link to={'/' + query({ threadId: r.threadId })} title={r.threadId}>{r.threadId.slice(0, 8)}</Link>
              </td>
              <td>{formatTime(r.createdAt)}</td>
              <td>{r.startedAt ? between(r.startedAt, r.finishedAt) : '—'}</td>
            </tr>
          ))}
          {items.length === 0 && !runs.isPending && (
            <tr>
              <td colSpan={9} className="muted">No runs match.</td>
            </tr>
          )}
        </tbody>
      </table>
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Newer
        </button>
        <button
          type="button"
          disabled={!runs.data?.nextCursor}
          onClick={() => runs.data?.nextCursor && setCursors([...cursors, runs.data.nextCursor])}
        >
          Older
        </button>
      </nav>
    </section>
  );
}
