// Usage and cost (GET /v1/usage, docs/observability.md "Usage and cost"): task attempts, errors,
// tokens and cost per day, route and model for the signed-in tenant, over a range of UTC days.
// Cost comes from the routes' pricing; tasks on routes without pricing are counted apart.
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api } from '../api';
import { ErrorText } from './common';

interface UsageNumbers {
  tasks: number;
  succeeded: number;
  errors: number;
  providerCalls: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  costUsd: number;
  unpricedTasks: number;
}

interface UsageRow extends UsageNumbers {
  day: string;
  route: string;
  model: string;
}

interface Usage {
  from: string;
  to: string;
  rows: UsageRow[];
  totals: UsageNumbers;
  truncated: boolean;
}

const count = new Intl.NumberFormat('en-US');
const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumFractionDigits: 4 });

function UsageCells({ n }: { n: UsageNumbers }) {
  return (
    <>
      <td className="num">{count.format(n.tasks)}</td>
      <td className="num">{count.format(n.errors)}</td>
      <td className="num">{count.format(n.promptTokens)}</td>
      <td className="num">{count.format(n.completionTokens)}</td>
      <td className="num">{usd.format(n.costUsd)}</td>
    </>
  );
}

export function UsagePage() {
  const [range, setRange] = useState<{ from?: string; to?: string }>({});
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const params = new URLSearchParams({ groupBy: 'day,route,model' });
  if (range.from) params.set('from', range.from);
  if (range.to) params.set('to', range.to);
  const usage = useQuery({ queryKey: ['usage', range], queryFn: () => api<Usage>(`/v1/usage?${params.toString()}`) });
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setRange({ from: from || undefined, to: to || undefined });
  };
  const data = usage.data;
  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      <form className="filters" onSubmit={apply} aria-label="Days">
        <label>
          From <input type="date" value={from} onChange={(e) => setFrom(e.target.value)} />
        </label>
        <label>
          To <input type="date" value={to} onChange={(e) => setTo(e.target.value)} />
        </label>
        <button type="submit">Show</button>
      </form>
      <ErrorText error={usage.error} />
      {data && (
        <p className="muted">
          {data.from} to {data.to} (UTC days), from the ledger.
        </p>
      )}
      <table aria-label="Usage by day, route and model">
        <thead>
          <tr>
            <th scope="col">Day</th>
            <th scope="col">Route</th>
            <th scope="col">Model</th>
            <th scope="col">Tasks</th>
            <th scope="col">Errors</th>
            <th scope="col">Input tokens</th>
            <th scope="col">Output tokens</th>
            <th scope="col">Cost</th>
          </tr>
        </thead>
        <tbody>
          {data?.rows.map((r) => (
            <tr key={`${r.day}|${r.route}|${r.model}`} data-usage-row={`${r.route}|${r.model}`}>
              <td>{r.day}</td>
              <td>{r.route || '–'}</td>
              <td>{r.model || '–'}</td>
              <UsageCells n={r} />
            </tr>
          ))}
          {data?.rows.length === 0 && (
            <tr>
              <td colSpan={8} className="muted">No usage in these days.</td>
            </tr>
          )}
        </tbody>
        {data && data.rows.length > 0 && (
          <tfoot>
            <tr data-usage-total="">
              <th scope="row" colSpan={3}>Total</th>
              <UsageCells n={data.totals} />
            </tr>
          </tfoot>
        )}
      </table>
      {data && data.totals.unpricedTasks > 0 && (
        <p className="muted">
          {count.format(data.totals.unpricedTasks)} succeeded task(s) ran on routes without pricing; their cost is not included.
        </p>
      )}
      {data?.truncated && <p className="muted">More rows exist: choose fewer days.</p>}
    </section>
  );
}
