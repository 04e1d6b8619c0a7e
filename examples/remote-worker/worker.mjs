#!/usr/bin/env node
// A Synaps remote worker in plain JavaScript: Node 20's built-in fetch, no npm packages.
// It speaks the Control API's queue protocol (docs/api.md, "Remote workers"):
//
//   POST /v1/queue/claim                 -> items, each with itemId and leaseEpoch
//   POST /v1/queue/items/{id}/renew      every third of the lease while working
//   POST /v1/queue/items/{id}/complete   with the output and an artifact (answer.md)
//   POST /v1/queue/items/{id}/fail       when the work itself failed
//
// A 409 (lease_lost or cancelled) or 404 on renew, complete or fail means the item is no longer
// ours: stop working on it and write nothing more. The "model" here is a deterministic stand-in
// (it echoes the prompt with some statistics); replace answer() with a real call.
//
// Usage:
//   SYNAPS_API_URL=http://127.0.0.1:8081 SYNAPS_TOKEN=sk_... node worker.mjs [--once]
//
// Options (environment variables in brackets):
//   --once               process one item, then exit (0: completed, 1: failed or abandoned)
//   --wait-seconds N     with --once: give up (exit 1) when nothing arrives within N s [60]
//   --queues a,b         queues to claim from [SYNAPS_QUEUES, default "default"]
//   --lease-seconds N    lease length asked for at each claim and renewal [30]
//   --work-ms N          pretend the model takes this long [200]
//   --poll-ms N          pause between empty claims [1000]
//   --name NAME          worker label recorded as the lease owner [node-<hostname>-<pid>]

import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

const EXIT_OK = 0;
const EXIT_NOT_DONE = 1;
const EXIT_CONFIG = 2;

function parseArgs(argv) {
  const opts = {
    once: false,
    waitSeconds: 60,
    queues: (process.env.SYNAPS_QUEUES || 'default').split(',').map((q) => q.trim()).filter(Boolean),
    leaseSeconds: 30,
    workMs: 200,
    pollMs: 1000,
    name: `node-${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 128),
  };
  const numeric = { '--wait-seconds': 'waitSeconds', '--lease-seconds': 'leaseSeconds',
                    '--work-ms': 'workMs', '--poll-ms': 'pollMs' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--once') {
      opts.once = true;
    } else if (arg in numeric) {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < 0) usage(`${arg} needs a non-negative integer`);
      opts[numeric[arg]] = value;
    } else if (arg === '--queues') {
      opts.queues = String(argv[++i] || '').split(',').map((q) => q.trim()).filter(Boolean);
    } else if (arg === '--name') {
      opts.name = String(argv[++i] || '');
    } else if (arg === '-h' || arg === '--help') {
      usage();
    } else {
      usage(`unknown argument ${arg}`);
    }
  }
  if (opts.leaseSeconds < 3 || opts.leaseSeconds > 3600) usage('--lease-seconds must be within 3..3600');
  if (opts.queues.length === 0) usage('--queues needs at least one queue');
  return opts;
}

function usage(problem) {
  if (problem) console.error(`worker.mjs: ${problem}`);
  console.error('usage: SYNAPS_API_URL=... SYNAPS_TOKEN=... node worker.mjs [--once] [--wait-seconds N] ' +
                '[--queues a,b] [--lease-seconds N] [--work-ms N] [--poll-ms N] [--name NAME]');
  process.exit(problem ? EXIT_CONFIG : EXIT_OK);
}

const log = (message, fields = {}) =>
  console.log(JSON.stringify({ at: new Date().toISOString(), message, ...fields }));

// An error answer from the API: status, and the envelope's code and message.
class ApiError extends Error {
  constructor(status, body) {
    const err = body && body.error ? body.error : {};
    super(`HTTP ${status} ${err.code || ''}: ${err.message || JSON.stringify(body)}`);
    this.status = status;
    this.code = err.code || '';
  }
  // The item is gone from us: another worker holds it, its run was cancelled, or it is finished.
  get lostItem() {
    return this.status === 404 || (this.status === 409 && (this.code === 'lease_lost' || this.code === 'cancelled'));
  }
}

class Api {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.token = token;
  }

  // POST with a JSON body; retries network errors, 429 (honouring Retry-After) and 5xx a few
  // times, since every queue call is safe to repeat with the same lease epoch.
  async post(path, body, { attempts = 5 } = {}) {
    let delayMs = 250;
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        response = await fetch(this.baseUrl + path, {
          method: 'POST',
          headers: { 'Authorization': `Bearer ${this.token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(30_000),
        });
      } catch (e) {
        if (attempt >= attempts) throw new Error(`cannot reach ${this.baseUrl}: ${e.cause?.message || e.message}`);
        await sleep(delayMs);
        delayMs = Math.min(delayMs * 2, 5000);
        continue;
      }
      const text = await response.text();
      let parsed = null;
      try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { raw: text }; }
      if (response.ok) return parsed;
      const retryable = response.status === 429 || response.status >= 500;
      if (!retryable || attempt >= attempts) throw new ApiError(response.status, parsed);
      const retryAfter = Number(response.headers.get('retry-after'));
      await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : delayMs);
      delayMs = Math.min(delayMs * 2, 5000);
    }
  }

  claim(opts) {
    return this.post('/v1/queue/claim',
                     { worker: opts.name, queues: opts.queues, limit: 1, leaseSeconds: opts.leaseSeconds });
  }
  renew(item, leaseSeconds) {
    return this.post(`/v1/queue/items/${item.itemId}/renew`,
                     { leaseEpoch: item.leaseEpoch, leaseSeconds }, { attempts: 2 });
  }
  complete(item, output, artifacts) {
    return this.post(`/v1/queue/items/${item.itemId}/complete`,
                     { leaseEpoch: item.leaseEpoch, output, artifacts });
  }
  fail(item, error, retryable) {
    return this.post(`/v1/queue/items/${item.itemId}/fail`,
                     { leaseEpoch: item.leaseEpoch, error, retryable });
  }
}

// The stand-in model. A prompt starting with "!fail" fails for good, to show the fail path.
async function answer(item, signal, workMs) {
  const text = String(item.spec?.input?.text ?? '');
  await sleep(workMs, undefined, { signal });
  if (text.startsWith('!fail')) {
    const error = new Error('the example model refuses prompts that start with !fail');
    error.retryable = false;
    throw error;
  }
  const words = text.split(/\s+/).filter(Boolean);
  const upstream = Object.entries(item.upstream || {});
  const lines = [
    `# ${item.name}`,
    '',
    `> ${text}`,
    '',
    `${words.length} words, ${[...text].length} characters, attempt ${item.attempt}.`,
  ];
  for (const [name, output] of upstream) lines.push('', `Input from ${name}: ${output?.text ?? JSON.stringify(output)}`);
  return lines.join('\n') + '\n';
}

// Works on one claimed item: renews the lease while the model runs, then completes or fails.
// Returns 'completed', 'failed' or 'abandoned'.
async function handleItem(api, item, opts) {
  log('claimed', { itemId: item.itemId, leaseEpoch: item.leaseEpoch, runId: item.runId, task: item.name, attempt: item.attempt });
  const work = new AbortController();
  let lost = null;
  const renewEveryMs = Math.max(1000, (opts.leaseSeconds * 1000) / 3);
  const renewer = setInterval(async () => {
    try {
      await api.renew(item, opts.leaseSeconds);
    } catch (e) {
      if (e instanceof ApiError && e.lostItem) {
        lost = e;
        work.abort(e);
      } else {
        log('renew failed; will try again', { itemId: item.itemId, error: e.message });
      }
    }
  }, renewEveryMs);
  try {
    let text;
    try {
      text = await answer(item, work.signal, opts.workMs);
    } catch (e) {
      if (lost) {
        log('abandoned: the item is no longer ours', { itemId: item.itemId, reason: lost.code || lost.status });
        return 'abandoned';
      }
      log('work failed', { itemId: item.itemId, error: e.message });
      try {
        const r = await api.fail(item, { code: 'example_error', message: e.message }, e.retryable !== false);
        log('reported failure', { itemId: item.itemId, state: r.state });
        return 'failed';
      } catch (f) {
        if (f instanceof ApiError && f.lostItem) return 'abandoned';
        throw f;
      }
    }
    if (lost) return 'abandoned';
    const output = { text, provider: 'node-example', model: 'echo' };
    const artifacts = [{ name: 'answer.md', contentType: 'text/markdown', content: text }];
    try {
      await api.complete(item, output, artifacts);
    } catch (e) {
      if (e instanceof ApiError && e.lostItem) {
        log('abandoned: completion refused', { itemId: item.itemId, reason: e.code || e.status });
        return 'abandoned';
      }
      throw e;
    }
    log('completed', { itemId: item.itemId, runId: item.runId, bytes: Buffer.byteLength(text) });
    return 'completed';
  } finally {
    clearInterval(renewer);
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const token = process.env.SYNAPS_TOKEN || '';
  if (!token) usage('set SYNAPS_TOKEN to an API key with the worker role (synaps keys create --role worker)');
  const api = new Api(process.env.SYNAPS_API_URL || 'http://127.0.0.1:8081', token);

  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      if (stopping) process.exit(EXIT_NOT_DONE);
      stopping = true;
      log('stopping after the current item');
    });
  }

  const waitUntil = Date.now() + opts.waitSeconds * 1000;
  let idleMs = opts.pollMs;
  log('started', { api: api.baseUrl, queues: opts.queues, once: opts.once });
  while (!stopping) {
    let items;
    try {
      ({ items } = await api.claim(opts));
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
        console.error(`worker.mjs: ${e.message} (the token needs the worker or admin role)`);
        return EXIT_CONFIG;
      }
      log('claim failed; retrying', { error: e.message });
      items = [];
    }
    if (items.length === 0) {
      if (opts.once && Date.now() >= waitUntil) {
        log('nothing to do', { waitedSeconds: opts.waitSeconds });
        return EXIT_NOT_DONE;
      }
      await sleep(idleMs);
      idleMs = Math.min(idleMs * 2, Math.max(opts.pollMs, 5000));
      continue;
    }
    idleMs = opts.pollMs;
    const outcome = await handleItem(api, items[0], opts);
    if (opts.once) return outcome === 'completed' ? EXIT_OK : EXIT_NOT_DONE;
  }
  return EXIT_OK;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`worker.mjs: ${e.stack || e.message}`);
    process.exit(EXIT_NOT_DONE);
  },
);
