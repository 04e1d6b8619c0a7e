export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function between(a: string | null | undefined, b: string | null | undefined): string {
  if (!a) return '—';
  const end = b ? new Date(b).getTime() : Date.now();
  return formatDuration(end - new Date(a).getTime());
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);
export const STATUSES = ['queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled'];

// An error as the API answers it: {code, message} (a run's also names its `task`); older rows
// and some events hold a plain string.
export type ApiErrorValue = string | { code?: string; message?: string; task?: string } | null | undefined;

export function errorText(e: ApiErrorValue): string {
  if (!e) return '';
  if (typeof e === 'string') return e;
  const text = [e.code, e.message].filter(Boolean).join(': ');
  return e.task ? `${text} (task ${e.task})` : text;
}
