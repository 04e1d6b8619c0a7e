// Why a queued task (or run) does not run yet, as GET /v1/runs/{id} answers it (`waiting`, the
// data of its task.waiting ledger event; docs/flow-control.md), in words for the console.
import { formatTime } from './format';

export interface Waiting {
  reason: string; // limit | thread | rateLimit
  key?: string;
  maxRunning?: number;
  limit?: string;
  runId?: string;
  route?: string;
  until?: string;
  waitMs?: number;
}

export function isWaiting(v: unknown): v is Waiting {
  return typeof v === 'object' && v !== null && typeof (v as { reason?: unknown }).reason === 'string';
}

// What it waits for, short: the status line of a task or run.
export function waitingFor(w: Waiting): string {
  if (w.reason === 'limit') return 'waiting for its concurrency limit';
  if (w.reason === 'thread') return 'waiting for its thread';
  if (w.reason === 'rateLimit') return 'waiting for a rate-limit slot';
  return `waiting (${w.reason})`;
}

// The particulars: the key and its limit, the run ahead on the thread, the route and its slot.
export function waitingDetail(w: Waiting): string {
  if (w.reason === 'limit') {
    const parts = [w.key ? `key ${w.key}` : '', w.maxRunning !== undefined ? `at most ${w.maxRunning} running` : '', w.limit ? `limit ${w.limit}` : ''];
    return parts.filter(Boolean).join(', ');
  }
  if (w.reason === 'thread') return w.runId ? `behind run ${w.runId.slice(0, 8)}` : '';
  if (w.reason === 'rateLimit') return [w.route ? `route ${w.route}` : '', w.until ? `slot at ${formatTime(w.until)}` : ''].filter(Boolean).join(', ');
  return '';
}
