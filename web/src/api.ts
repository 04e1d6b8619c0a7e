// The Control API from the browser: same origin, bearer token from the tab's session, JSON
// errors turned into ApiError (with the field the API named, for forms).
import { clearToken, getToken } from './auth';
import type { ApiErrorValue } from './format';
import type { Waiting } from './waiting';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export interface Me {
  id: string;
  tenantId: string;
  role: string;
  installation: boolean;
  may: { read: boolean; submit: boolean; operate: boolean; admin: boolean; control: boolean };
}

export interface RunSummary {
  id: string;
  status: string;
  commandId: string;
  threadId: string;
  tenantId?: string;
  kind?: string;
  title?: string;
  tags?: string[];
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: ApiErrorValue;
}

export interface Task {
  id: string;
  name: string;
  kind: string;
  status: string;
  attempt: number;
  maxAttempts: number;
  dependsOn: string[] | null;
  error: ApiErrorValue;
  startedAt: string | null;
  finishedAt: string | null;
  waiting?: Waiting | null;
  // Its answer text once it has one; a long one is also the thread's answer.md artifact.
  answer?: string | null;
}

export interface LedgerEvent {
  seq: number;
  type: string;
  taskId: string | null;
  attempt: number | null;
  at: string;
  data: Record<string, unknown>;
}

export interface Artifact {
  id: string;
  name: string;
  contentType: string;
  versions: { version: number; size: number; sha256?: string; createdAt: string }[] | null;
}

export interface Run extends RunSummary {
  waiting?: Waiting | null;
  threadSeq?: number;
  tasks: Task[];
  events: LedgerEvent[];
  artifacts: Artifact[];
}

export interface ThreadRun extends RunSummary {
  threadSeq: number;
  threadTurn: string | null;
  title: string;
}

export interface Thread {
  id: string;
  title: string | null;
  createdAt: string;
  runs: ThreadRun[];
}

// GET /v1/flow (docs/api.md): the tenant's concurrency keys, route rate limits and threads with
// runs waiting for their turn.
export interface FlowKey {
  key: string;
  running: number;
  waiting: number;
  ready: number;
  oldestWaitingSince: string | null;
  limit: string | null;
  maxRunning: number | null;
  strategy: string | null;
}

export interface FlowRoute {
  route: string;
  requestsPerMinute: number | null;
  tokensPerMinute: number | null;
  nextSlotAt: string | null;
  blockedUntil: string | null;
  waiting: number;
  waitingUntil: string | null;
}

export interface FlowThread {
  threadId: string;
  queuedRuns: number;
  oldestQueuedAt: string;
  runId: string | null;
  runStatus: string | null;
}

export interface Flow {
  keys: FlowKey[];
  routes: FlowRoute[];
  threads: FlowThread[];
  moreKeys: boolean;
  moreThreads: boolean;
}

export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function toError(res: Response): Promise<ApiError> {
  let code = 'http_' + res.status;
  let message = res.statusText || 'request failed';
  let field: string | undefined;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string; field?: string } };
    if (body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      field = body.error.field;
    }
  } catch {
    // not JSON: keep the status text
  }
  if (res.status === 401) clearToken();
  return new ApiError(res.status, code, message, field);
}

export async function api<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const headers: Record<string, string> = { ...authHeaders(), Accept: 'application/json' };
  if (init.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? null : JSON.stringify(init.body),
    signal: init.signal ?? null,
    credentials: 'omit',
    cache: 'no-store',
  });
  if (!res.ok) throw await toError(res);
  return (await res.json()) as T;
}

export async function fetchBlob(path: string): Promise<Blob> {
  const res = await fetch(path, { headers: authHeaders(), credentials: 'omit' });
  if (!res.ok) throw await toError(res);
  return res.blob();
}

export function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}
