// The console in a real browser (Debian's chromium driven by playwright-core) against a real
// stack that tests/e2e/console_test.cpp started: sign in, submit and watch the run succeed live,
// approve and reject held tasks, edit a prompt and roll it back, bulk-cancel by filter, API
// keys, what a viewer is offered, tenant isolation; axe-core on every page (no serious or
// critical violation). Screenshots go to $SCREENSHOT_DIR. Exits non-zero on the first failure.
//
// Environment: CONSOLE_URL, ADMIN_TOKEN (tenant "default"), VIEWER_TOKEN (viewer of "default"),
// OTHER_TOKEN (operator of another tenant), SCREENSHOT_DIR, CHROMIUM (default /usr/bin/chromium).
import AxeBuilder from '@axe-core/playwright';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env('CONSOLE_URL');
const ADMIN = env('ADMIN_TOKEN');
const VIEWER = env('VIEWER_TOKEN');
const OTHER = env('OTHER_TOKEN');
const SHOTS = env('SCREENSHOT_DIR');
mkdirSync(SHOTS, { recursive: true });
const T = 30_000;

async function call(token, method, path, body) {
  const res = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function until(what, predicate, ms = T) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await predicate();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

const problems = [];
async function axe(page, name) {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad) {
    problems.push(`${name}: ${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }
  console.log(`axe ${name}: ${result.violations.length} violations, ${bad.length} serious or critical`);
  await keyboardWalk(page, name);
}

// A keyboard walk: Tab from the top of the page. Every visible link, button, field and
// scrollable preview must be reached, in one pass (so nothing is out of the tab order, and no
// widget traps focus in a smaller cycle). A date field takes several Tabs (one per part).
async function focusTop(page) {
  await page.evaluate(() => {
    const start = document.createElement('span');
    start.tabIndex = -1;
    document.body.prepend(start);
    start.focus();
    start.remove();
  });
}

async function keyboardWalk(page, name) {
  const total = await page.evaluate(() => {
    const sel = 'a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
    let n = 0;
    for (const e of document.querySelectorAll('[data-kb]')) e.removeAttribute('data-kb');
    for (const e of document.querySelectorAll(sel)) {
      const r = e.getBoundingClientRect();
      // checkVisibility: false inside a closed <details> too (its content is not rendered).
      if (r.width === 0 || r.height === 0 || !e.checkVisibility({ visibilityProperty: true })) continue;
      e.setAttribute('data-kb', String(n++));
    }
    return n;
  });
  await focusTop(page);
  const seen = new Set();
  let previous = '';
  for (let step = 0; step < total * 6 + 20 && seen.size < total; step++) {
    await page.keyboard.press('Tab');
    const k = await page.evaluate(() => document.activeElement?.getAttribute('data-kb') ?? '');
    if (k !== '' && k !== previous && seen.has(k)) break; // came round again: a cycle
    if (k !== '') seen.add(k);
    previous = k;
  }
  const missed = await page.evaluate((seenList) => {
    const s = new Set(seenList);
    return [...document.querySelectorAll('[data-kb]')]
      .filter((e) => e.isConnected && !s.has(e.getAttribute('data-kb')))
      .map((e) => `${e.tagName.toLowerCase()} "${(e.getAttribute('aria-label') ?? e.textContent ?? '').trim().slice(0, 40)}"`);
  }, [...seen]);
  if (missed.length) problems.push(`${name}: keyboard walk never reached ${missed.join(', ')}`);
  console.log(`keyboard ${name}: ${seen.size} of ${total} reached by Tab`);
  // Leave focus as a fresh page has it: the next Tab goes to the first element.
  await focusTop(page);
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

function watch(page, label) {
  page.on('dialog', (d) => void d.accept());
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy|Refused to/i.test(m.text())) {
      problems.push(`${label}: CSP violation: ${m.text()}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`${label}: page error: ${e.message}`));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
});
let failed = false;
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await ctx.newPage();
  watch(page, 'admin');
  page.setDefaultTimeout(T);

  // Sign in, by keyboard: a wrong token is refused, the right one kept in sessionStorage only.
  await page.goto(BASE + '/');
  await page.getByRole('heading', { name: 'Synaps console' }).waitFor();
  await axe(page, 'sign-in');
  await shot(page, 'sign-in');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'token', 'Tab reaches the Token field');
  await page.keyboard.type('not-a-token');
  await page.keyboard.press('Enter');
  await page.getByText('That token was refused.').waitFor();
  await page.getByLabel('Token').fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Runs' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('synaps.token')), ADMIN);
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');

  // The tenant never sees another tenant's run.
  const foreign = await call(OTHER, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text: 'globex private note' } });

  // Submit from the form and watch the run reach succeeded without a reload.
  await page.getByRole('link', { name: 'Submit' }).click();
  await page.getByRole('heading', { name: 'Submit' }).waitFor();
  await axe(page, 'submit');
  await shot(page, 'submit');
  await page.getByLabel('Input').fill('hello from the console');
  await page.getByLabel('Tags').fill('console, demo');
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  const runId = page.url().split('/').pop();
  await page.locator('h1 .badge-succeeded').waitFor();
  await page.locator('pre.preview', { hasText: 'hello from the console' }).waitFor();
  await page.getByText('task.completed').first().waitFor();
  // The tasks as a graph, and the control versions the task used as their own section.
  await page.getByRole('img', { name: /^Task graph: 1 task, 0 dependencies$/ }).waitFor();
  assert.equal(await page.locator('.graph-node.graph-succeeded').count(), 1);
  await page.getByRole('table', { name: 'Control versions used' }).locator('tr[data-control-task]').first().waitFor();
  // The waterfall: the task's queue wait, model time and the control snapshot it used; the
  // timeline names the same snapshot at the task's completion.
  const waterfall = page.getByRole('table', { name: 'Waterfall' });
  for (const phase of ['queue wait', 'model time', 'control used']) {
    await waterfall.locator(`tr[data-phase="${phase}"]`).first().waitFor();
  }
  await waterfall.getByRole('link', { name: /^snapshot \d+$/ }).waitFor();
  await page.getByRole('list', { name: 'Ledger events' }).getByRole('link', { name: /^snapshot \d+$/ }).waitFor();
  await axe(page, 'run-detail');
  await shot(page, 'run-detail');

  // Follow a streaming answer: route `slow` sends 40 words, one every 100 ms. The answer grows on the
  // run page while the task runs; then the run succeeds with the whole answer, shown as the
  // task's answer (tasks[].answer) and as its artifact's preview.
  await page.getByRole('link', { name: 'Submit' }).click();
  await page.getByLabel('Input').fill('stream to the console');
  await page.getByLabel('Route').fill('slow');
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
  const liveAnswer = page.getByTestId('live-answer');
  await liveAnswer.filter({ hasText: 'word3 ' }).waitFor();
  const partial = await liveAnswer.innerText();
  assert.ok(!partial.includes('word40'), `the answer streamed in, not whole: ${partial}`);
  await shot(page, 'run-streaming');
  await axe(page, 'run-streaming');
  await page.locator('h1 .badge-succeeded').waitFor();
  await page.locator('pre.preview', { hasText: 'word40' }).waitFor();
  await page.getByTestId('task-answer').filter({ hasText: 'word40' }).waitFor();
  assert.equal(await page.getByTestId('live-answer').count(), 0, 'the live answer gave way to the answer');

  // Runs: the new run is listed; another tenant's never; a new run appears live.
  await page.getByRole('link', { name: 'Runs', exact: true }).click();
  await page.locator(`tr[data-run-id="${runId}"][data-status="succeeded"]`).waitFor();
  const live = await call(ADMIN, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text: 'arrived while watching' } });
  await page.locator(`tr[data-run-id="${live.runId}"]`).waitFor();
  await page.locator(`tr[data-run-id="${live.runId}"][data-status="succeeded"]`).waitFor();
  assert.equal(await page.locator(`tr[data-run-id="${foreign.runId}"]`).count(), 0);
  assert.equal(await page.getByText('globex private note').count(), 0);
  await axe(page, 'runs');
  await shot(page, 'runs');

  // Approvals: two held tasks; approve one, reject the other, with reasons.
  const held = [];
  for (const text of ['approve me', 'reject me']) {
    held.push((await call(ADMIN, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text }, tags: ['review'] })).runId);
  }
  for (const id of held) {
    await until(`run ${id} held`, async () => (await call(ADMIN, 'GET', `/v1/runs/${id}`)).status === 'awaiting_approval');
  }
  await page.getByRole('link', { name: /^Approvals \(2\)$/ }).waitFor();
  await page.getByRole('link', { name: /^Approvals/ }).click();
  const first = page.getByRole('article').filter({ hasText: 'approve me' });
  const second = page.getByRole('article').filter({ hasText: 'reject me' });
  await first.waitFor();
  await second.waitFor();
  await axe(page, 'approvals');
  await shot(page, 'approvals');
  await first.getByLabel('Reason').fill('looks right');
  await first.getByRole('button', { name: 'Approve' }).click();
  await first.waitFor({ state: 'detached' });
  await second.getByLabel('Reason').fill('not this one');
  await second.getByRole('button', { name: 'Reject' }).click();
  await second.waitFor({ state: 'detached' });
  await until('approved run succeeded', async () => (await call(ADMIN, 'GET', `/v1/runs/${held[0]}`)).status === 'succeeded');
  const rejected = await until('rejected run finished', async () => {
    const r = await call(ADMIN, 'GET', `/v1/runs/${held[1]}`);
    return ['failed', 'cancelled'].includes(r.status) ? r : null;
  });
  assert.ok(JSON.stringify(rejected.events).includes('not this one'), 'the reason is in the ledger');
  await page.getByRole('link', { name: 'Approvals', exact: true }).waitFor();
  await page.goto(`${BASE}/runs/${held[0]}`);
  const approvedFall = page.getByRole('table', { name: 'Waterfall' });
  await approvedFall.locator('tr[data-phase="approval wait"]', { hasText: 'approved' }).filter({ hasText: 'looks right' }).waitFor();
  await approvedFall.locator('tr[data-phase="verdict human"]').waitFor();

  // Fan-out and joins: six tasks, `fetch` feeding three summaries that `merge` joins, and an
  // independent `notify`. The graph puts each task one column right of its deepest dependency
  // and draws an arrow per dependency; the waterfall has a group per task.
  const fan = await call(ADMIN, 'POST', '/v1/commands/submit', {
    kind: 'prompt',
    tasks: [
      { name: 'fetch', input: { text: 'fetch the report' } },
      { name: 'summarize-a', input: { text: 'part a' }, dependsOn: ['fetch'] },
      { name: 'summarize-b', input: { text: 'part b' }, dependsOn: ['fetch'] },
      { name: 'summarize-c', input: { text: 'part c' }, dependsOn: ['fetch'] },
      { name: 'merge', input: { text: 'merge the parts' }, dependsOn: ['summarize-a', 'summarize-b', 'summarize-c'] },
      { name: 'notify', input: { text: 'tell the team' } },
    ],
  });
  await until('the fan-out run succeeded', async () => (await call(ADMIN, 'GET', `/v1/runs/${fan.runId}`)).status === 'succeeded');
  await page.goto(`${BASE}/runs/${fan.runId}`);
  await page.getByRole('img', { name: 'Task graph: 6 tasks, 6 dependencies' }).waitFor();
  assert.equal(await page.locator('g.graph-node.graph-succeeded').count(), 6);
  const edges = await page.locator('path.graph-edge').evaluateAll((ps) => ps.map((p) => p.getAttribute('data-edge')).sort());
  assert.deepEqual(edges, ['fetch->summarize-a', 'fetch->summarize-b', 'fetch->summarize-c',
    'summarize-a->merge', 'summarize-b->merge', 'summarize-c->merge']);
  const column = async (name) => {
    const t = await page.locator(`g.graph-node[data-task="${name}"]`).getAttribute('transform');
    return Number(/translate\(([\d.]+) /.exec(t)?.[1]);
  };
  const [cFetch, cNotify, cA, cB, cC, cMerge] = await Promise.all(['fetch', 'notify', 'summarize-a', 'summarize-b', 'summarize-c', 'merge'].map(column));
  assert.equal(cFetch, cNotify, 'fetch and notify start the graph');
  assert.ok(cA > cFetch && cA === cB && cB === cC, 'the fan-out is one column');
  assert.ok(cMerge > cA, 'the join comes after it');
  assert.equal(await page.locator('tbody[data-waterfall-task]').count(), 6);
  for (const name of ['fetch', 'merge', 'notify']) {
    await page.locator(`tbody[data-waterfall-task="${name}"] tr[data-phase="model time"]`).waitFor();
  }
  // The join waited for its three dependencies before its queue wait began; a root task did not.
  await page.locator('tbody[data-waterfall-task="merge"] tr[data-phase="waiting for dependencies"]', { hasText: 'summarize-a, summarize-b, summarize-c' }).waitFor();
  assert.equal(await page.locator('tbody[data-waterfall-task="fetch"] tr[data-phase="waiting for dependencies"]').count(), 0);
  // Tasks are listed in the order they started: the join last.
  const order = await page.locator('tbody[data-waterfall-task]').evaluateAll((bs) => bs.map((b) => b.getAttribute('data-waterfall-task')));
  assert.equal(order.at(-1), 'merge', `waterfall order ${order}`);
  await axe(page, 'run-fan-out');
  await shot(page, 'run-fan-out');
  await page.getByRole('link', { name: 'Runs', exact: true }).click();

  // Control: edit a prompt (a bad template is refused at the field), see history and diff,
  // roll back.
  await call(ADMIN, 'PUT', '/v1/control/prompts/greeting', { spec: { template: 'Hello {{name}}' }, reason: 'first cut' });
  await page.getByRole('link', { name: 'Control' }).click();
  await page.getByRole('link', { name: 'greeting' }).click();
  await page.getByRole('button', { name: 'Edit' }).click();
  await page.getByLabel('Spec (JSON)').fill('{"template": "Hi {{ oops"}');
  await page.getByLabel('Reason').fill('try a typo');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#spec-error').waitFor();
  assert.match(await page.locator('#spec-error').innerText(), /template/);
  await page.getByLabel('Spec (JSON)').fill('{"template": "Good day, {{name}}"}');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByLabel('Current spec').filter({ hasText: 'Good day' }).waitFor();
  await page.getByRole('table', { name: 'History' }).getByText('try a typo').waitFor();
  await page.getByLabel('Diff').filter({ hasText: '+   "template": "Good day, {{name}}"' }).waitFor();
  await axe(page, 'control');
  await shot(page, 'control');
  await page.getByLabel('Roll back to version').selectOption('1');
  await page.getByLabel('Reason', { exact: true }).last().fill('back to the first cut');
  await page.getByRole('button', { name: 'Roll back' }).click();
  await page.getByLabel('Current spec').filter({ hasText: 'Hello {{name}}' }).waitFor();
  const greeting = await call(ADMIN, 'GET', '/v1/control/prompts/greeting');
  assert.equal(greeting.version, 3);
  assert.equal(greeting.spec.template, 'Hello {{name}}');

  // The snapshot at a version: now greeting is at version 3; one change earlier, at version 2.
  const current = await call(ADMIN, 'GET', '/v1/control/snapshot');
  await page.getByRole('link', { name: 'snapshot', exact: true }).click();
  await page.getByRole('heading', { name: `Snapshot at version ${current.version}` }).waitFor();
  const greetingRow = () => page.locator('tr[data-snapshot-item="prompts/greeting"] td').nth(1);
  assert.equal(await greetingRow().innerText(), '3');
  await page.getByLabel('Version', { exact: true }).fill(String(current.version - 1));
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByRole('heading', { name: `Snapshot at version ${current.version - 1}` }).waitFor();
  assert.equal(await greetingRow().innerText(), '2');
  // Flow control's kind is in the registry's tabs like the others.
  await call(ADMIN, 'PUT', '/v1/control/concurrency/per-document', { spec: { match: { key: 'doc:*' }, maxRunning: 1 }, reason: 'console test' });
  await page.getByRole('link', { name: 'concurrency', exact: true }).click();
  await page.getByRole('link', { name: 'per-document' }).click();
  await page.getByLabel('Current spec').filter({ hasText: 'maxRunning' }).waitFor();
  await page.getByRole('link', { name: 'snapshot', exact: true }).click();
  await page.getByRole('heading', { name: /^Snapshot at version \d+$/ }).waitFor();
  await page.getByLabel('Version', { exact: true }).fill(String(current.version - 1));
  await page.getByRole('button', { name: 'Show' }).click();
  await page.getByRole('heading', { name: `Snapshot at version ${current.version - 1}` }).waitFor();
  await axe(page, 'control-snapshot');
  await shot(page, 'control-snapshot');

  // Flow control. Two tasks with one concurrencyKey under maxRunning 1 (per-document, above), on
  // route `slower` (a word every 250 ms: 60 s, cancelled long before): the second waits for its
  // limit, and runs once the first is cancelled. A run on the first one's thread waits for its
  // turn meanwhile.
  const holder = await call(ADMIN, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text: 'limit holder' }, route: 'slower', concurrencyKey: 'doc:7' });
  await until('the limit holder running', async () => (await call(ADMIN, 'GET', `/v1/runs/${holder.runId}`)).status === 'running');
  const waiter = await call(ADMIN, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text: 'limit waiter' }, route: 'slower', concurrencyKey: 'doc:7' });
  const follower = await call(ADMIN, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text: 'thread follower' }, threadId: holder.threadId });
  await until('the second task waits for its limit', async () => (await call(ADMIN, 'GET', `/v1/runs/${waiter.runId}`)).tasks[0]?.waiting?.reason === 'limit');
  await page.getByRole('link', { name: 'Flow', exact: true }).click();
  await page.getByRole('heading', { name: 'Flow control' }).waitFor();
  const keyCells = page.locator('tr[data-flow-key="doc:7"] td');
  await until('doc:7 listed with one running and one waiting', async () =>
    (await keyCells.count()) === 7 && (await keyCells.nth(1).innerText()) === '1 of 1' && (await keyCells.nth(2).innerText()) === '1');
  assert.equal(await keyCells.nth(5).innerText(), 'per-document');
  assert.equal(await keyCells.nth(6).innerText(), 'queue');
  await page.locator('tr[data-flow-route="slower"]').getByText('600 requests/min').waitFor();
  const threadRow = page.locator(`tr[data-flow-thread="${holder.threadId}"]`);
  await threadRow.getByRole('link', { name: `Run ${holder.runId}` }).waitFor();
  assert.equal(await threadRow.locator('td').nth(1).innerText(), '1');
  await axe(page, 'flow');
  await shot(page, 'flow');
  // The waiting task says what it waits for, in its run and in the waterfall.
  await page.goto(`${BASE}/runs/${waiter.runId}`);
  await page.locator('h1 .badge-waiting').waitFor();
  await page.locator('[data-task-waiting="limit"]').filter({ hasText: 'waiting for its concurrency limit: key doc:7, at most 1 running, limit per-document' }).waitFor();
  await page.getByTestId('run-waiting').filter({ hasText: 'waiting for its concurrency limit' }).waitFor();
  await page.locator('tr[data-phase="waiting for a concurrency slot"]').waitFor();
  await axe(page, 'run-waiting');
  await shot(page, 'run-waiting');
  // The run behind the thread: waiting for its thread, the thread's runs listed in order.
  await page.goto(`${BASE}/runs/${follower.runId}`);
  await page.locator('[data-task-waiting="thread"]').filter({ hasText: `behind run ${holder.runId.slice(0, 8)}` }).waitFor();
  const threadRuns = page.getByRole('list', { name: 'Thread' }).locator('li');
  await threadRuns.nth(1).waitFor();
  assert.deepEqual(await threadRuns.evaluateAll((ls) => ls.map((l) => l.getAttribute('data-thread-run'))), [holder.runId, follower.runId]);
  assert.equal(await page.getByRole('list', { name: 'Thread' }).locator('li[aria-current]').getAttribute('data-thread-run'), follower.runId);
  await page.locator('tr[data-phase="waiting for its thread"]').waitFor();
  await axe(page, 'run-thread');
  await shot(page, 'run-thread');
  // Cancelling the holder frees the key and the thread: the waiter runs, the follower runs.
  await page.goto(`${BASE}/runs/${waiter.runId}`);
  await page.locator('h1 .badge-waiting').waitFor();
  await call(ADMIN, 'POST', `/v1/runs/${holder.runId}/cancel`);
  await page.locator('h1 .badge-running').waitFor();
  assert.equal(await page.locator('[data-task-waiting]').count(), 0, 'no longer shown as waiting');
  await page.locator('tr[data-phase="waiting for a concurrency slot"]').filter({ hasNotText: 'ongoing' }).waitFor();
  await until('the follower ran after the holder', async () => (await call(ADMIN, 'GET', `/v1/runs/${follower.runId}`)).status === 'succeeded');
  await call(ADMIN, 'POST', `/v1/runs/${waiter.runId}/cancel`);

  // A rate-limit wait: route `trickle` (the slow fake, at most 1 request a minute): the first
  // task takes the minute's slot, the second waits for the route in the queue (more than 30 s
  // away: parked without a slot), and its run page and the Flow page say so.
  const slowerSpec = (await call(ADMIN, 'GET', '/v1/control/routes/slower')).spec;
  await call(ADMIN, 'PUT', '/v1/control/routes/trickle', { spec: { ...slowerSpec, limits: { requestsPerMinute: 1 } }, reason: 'console test: one request a minute' });
  const trickleFirst = await call(ADMIN, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text: 'trickle first' }, route: 'trickle' });
  await until('the first trickle task running', async () => (await call(ADMIN, 'GET', `/v1/runs/${trickleFirst.runId}`)).status === 'running');
  const trickleSecond = await call(ADMIN, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text: 'trickle second' }, route: 'trickle' });
  await until('the second trickle task waits for the route', async () => (await call(ADMIN, 'GET', `/v1/runs/${trickleSecond.runId}`)).tasks[0]?.waiting?.reason === 'rateLimit');
  await page.goto(`${BASE}/runs/${trickleSecond.runId}`);
  await page.locator('[data-task-waiting="rateLimit"]').filter({ hasText: 'waiting for a rate-limit slot' }).waitFor();
  await page.locator('[data-task-waiting="rateLimit"]').filter({ hasText: 'route trickle' }).waitFor();
  await page.locator('tr[data-phase="waiting for a rate-limit slot"]').waitFor();
  await axe(page, 'run-rate-limit');
  await shot(page, 'run-rate-limit');
  await page.getByRole('link', { name: 'Flow', exact: true }).click();
  await page.locator('tr[data-flow-route="trickle"]').getByText('1 request/min').waitFor();
  await call(ADMIN, 'POST', `/v1/runs/${trickleSecond.runId}/cancel`);
  await call(ADMIN, 'POST', `/v1/runs/${trickleFirst.runId}/cancel`);

  // Bulk cancel by filter: three held runs tagged "bulk" are cancelled in one action.
  const bulk = [];
  for (let i = 0; i < 3; i++) {
    bulk.push((await call(ADMIN, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text: `bulk ${i}` }, tags: ['review', 'bulk'] })).runId);
  }
  for (const id of bulk) {
    await until(`run ${id} held`, async () => (await call(ADMIN, 'GET', `/v1/runs/${id}`)).status === 'awaiting_approval');
  }
  await page.getByRole('link', { name: 'Runs', exact: true }).click();
  await page.getByLabel('Tag', { exact: true }).fill('bulk');
  await page.getByRole('button', { name: 'Apply' }).click();
  await until('the filter to show the three bulk runs', async () => (await page.locator('tr[data-run-id]').count()) === 3);
  await page.getByRole('button', { name: 'Cancel all matching' }).click();
  await page.getByText('Cancelled 3 runs.').waitFor();
  for (const id of bulk) assert.equal((await call(ADMIN, 'GET', `/v1/runs/${id}`)).status, 'cancelled');
  await page.locator('tr[data-run-id][data-status="cancelled"]').nth(2).waitFor();

  // Bulk retry: the three cancelled runs are retried by the same filter (each a new run, held
  // again), cancelled again, then one is retried by selection.
  await page.getByRole('button', { name: 'Retry all matching' }).click();
  await page.getByText('Retried 3 runs.').waitFor();
  await until('six bulk runs', async () => (await page.locator('tr[data-run-id]').count()) === 6);
  const retriedBulk = await call(ADMIN, 'GET', '/v1/runs?tag=bulk');
  assert.equal(retriedBulk.items.filter((r) => r.status !== 'cancelled').length, 3, 'three new runs');
  await page.getByRole('button', { name: 'Cancel all matching' }).click();
  await page.getByText('Cancelled 3 runs.').waitFor();
  await page.locator('tr[data-run-id][data-status="cancelled"]').nth(5).waitFor();
  // Each row's checkbox is named for its run (the title, and the id that tells equal titles apart).
  await page.getByRole('checkbox', { name: `Select bulk 0, run ${bulk[0]}`, exact: true }).check();
  await page.getByRole('button', { name: 'Retry selected (1)' }).click();
  await page.getByText('Retried 1 run.').waitFor();
  await until('seven bulk runs', async () => (await page.locator('tr[data-run-id]').count()) === 7);
  await page.getByRole('button', { name: 'Cancel all matching' }).click();
  await page.getByText('Cancelled 1 run.').waitFor();
  await axe(page, 'runs-bulk');

  // The installation scope (this token) reads another tenant's runs through the Tenant filter;
  // bulk actions stay in its own tenant, so none are offered there, nor on that tenant's run.
  await page.getByLabel('Tag', { exact: true }).fill('');
  await page.getByLabel('Tenant', { exact: true }).fill('globex');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator(`tr[data-run-id="${foreign.runId}"]`).waitFor();
  assert.equal(await page.locator('tr[data-run-id]').count(), 1, 'globex has one run');
  // Live: a run globex submits now appears without a reload (the feed follows every tenant).
  const foreignLive = await call(OTHER, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text: 'globex second note' } });
  await page.locator(`tr[data-run-id="${foreignLive.runId}"][data-status="succeeded"]`).waitFor();
  assert.equal(await page.getByRole('checkbox').count(), 0, 'no selection in another tenant');
  assert.equal(await page.getByRole('button', { name: /Cancel all matching/ }).count(), 0);
  await axe(page, 'runs-tenant');
  await page.locator(`tr[data-run-id="${foreign.runId}"] a`).first().click();
  await page.locator('dd', { hasText: /^globex$/ }).waitFor();
  await page.locator('h1 .badge').waitFor();
  assert.equal(await page.getByRole('button', { name: /^(Cancel|Retry)$/ }).count(), 0);
  await page.getByRole('link', { name: 'Runs', exact: true }).click();
  await page.locator(`tr[data-run-id="${runId}"]`).waitFor();

  // Queues, workers, API keys (a key is created, shown once, revoked).
  await page.getByRole('link', { name: 'Queues' }).click();
  await page.getByRole('heading', { name: 'Dead letters' }).waitFor();
  // The held run for the viewer below is not submitted yet; the queue table lists what exists.
  await page.getByRole('table', { name: 'Queues' }).waitFor();
  await axe(page, 'queues');

  // A dead letter: arbiter `strict` refuses every answer of tasks tagged "strict" (onFail fail:
  // no retry), so a one-attempt task is dead-lettered. Requeue from the page runs it again.
  await call(ADMIN, 'PUT', '/v1/control/arbiters/strict', {
    spec: { match: { tags: ['strict'] }, checks: [{ type: 'regex', require: ['^never matches$'] }], onFail: 'fail' },
    reason: 'console test: a dead letter',
  });
  const doomed = (await call(ADMIN, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text: 'doomed' }, tags: ['strict'], maxAttempts: 1 })).runId;
  await until('the doomed run failed', async () => (await call(ADMIN, 'GET', `/v1/runs/${doomed}`)).status === 'failed');
  await page.getByRole('link', { name: 'Runs', exact: true }).click();
  await page.getByRole('link', { name: 'Queues' }).click();
  const deadRow = page.getByRole('table', { name: 'Dead letters' }).locator(`tr[data-run-id="${doomed}"]`);
  await deadRow.getByText(/arbiters/).waitFor();
  await shot(page, 'queues');
  const claims = async () => (await call(ADMIN, 'GET', `/v1/runs/${doomed}`)).events.filter((e) => e.type === 'task.claimed').length;
  assert.equal(await claims(), 1);
  await deadRow.getByRole('button', { name: 'Requeue' }).click();
  await until('the requeued task claimed again', async () => (await claims()) === 2);
  await call(ADMIN, 'DELETE', '/v1/control/arbiters/strict', { reason: 'console test done' });
  await page.getByRole('link', { name: 'Workers' }).click();
  await page.locator('tbody tr').first().waitFor();
  await axe(page, 'workers');
  await shot(page, 'workers');
  // Usage: the tenant's finished task attempts by day, route and model, with their total.
  await page.getByRole('link', { name: 'Usage', exact: true }).click();
  await page.getByRole('heading', { name: 'Usage' }).waitFor();
  const usageTable = page.getByRole('table', { name: 'Usage by day, route and model' });
  await usageTable.locator('tr[data-usage-total]').waitFor();
  assert.ok((await usageTable.locator('tbody tr[data-usage-row]').count()) >= 1, 'a usage row');
  const usageTotal = Number((await usageTable.locator('tr[data-usage-total] td').first().textContent()).replace(/,/g, ''));
  assert.ok(usageTotal > 0, `usage total ${usageTotal}`);
  await axe(page, 'usage');
  await shot(page, 'usage');
  // Schedules: the list, one schedule's next and recent fire times, Run now, and a backfill.
  await call(ADMIN, 'PUT', '/v1/control/schedules/hourly-report', {
    spec: { every: '30m', overlap: 'allow', command: { kind: 'prompt', input: { text: 'scheduled report' } } },
    reason: 'console test',
  });
  await page.getByRole('link', { name: 'Schedules' }).click();
  const schedRow = page.locator('tr[data-schedule="hourly-report"]');
  await schedRow.getByText('every 30m').waitFor();
  await schedRow.getByText('never fired').waitFor();
  await axe(page, 'schedules');
  await schedRow.getByRole('link', { name: 'hourly-report' }).click();
  await page.getByRole('heading', { name: 'Schedule hourly-report' }).waitFor();
  const nextFires = page.getByRole('list', { name: 'Next fire times' }).getByRole('listitem');
  await nextFires.nth(4).waitFor();
  assert.equal(await nextFires.count(), 5);
  await page.getByRole('button', { name: 'Run now' }).click();
  await page.getByRole('status').filter({ hasText: 'Run now: started' }).waitFor();
  await page.locator('tr[data-outcome="started"]').first().getByRole('link').waitFor();
  const triggered = await call(ADMIN, 'GET', '/v1/runs?schedule=hourly-report');
  assert.equal(triggered.items.length, 1, 'Run now started one run of the schedule');
  // One hour of a 30-minute schedule, two hours back: two fire times, both started (overlap allow).
  const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
  const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  await page.getByLabel('From').fill(local(new Date(hour - 2 * 3_600_000)));
  await page.getByLabel('To').fill(local(new Date(hour - 3_600_000)));
  await page.getByRole('button', { name: 'Backfill', exact: true }).click();
  await page.getByRole('status').filter({ hasText: /Backfill: 2 fire times, 2 started/ }).waitFor();
  await until('three runs of the schedule', async () => (await call(ADMIN, 'GET', '/v1/runs?schedule=hourly-report')).items.length === 3);
  await axe(page, 'schedule');
  await shot(page, 'schedule');

  await page.getByRole('link', { name: 'API keys' }).click();
  await page.getByLabel('Name', { exact: true }).fill('ci-reader');
  await page.getByRole('button', { name: 'Create key' }).click();
  const token = await page.getByLabel('New token').innerText();
  assert.match(token, /^sk_[0-9a-f]{64}$/);
  await axe(page, 'api-keys');
  await shot(page, 'api-keys');
  const row = page.getByRole('row').filter({ hasText: 'ci-reader' });
  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.getByText(/^revoked/).waitFor();
  const refused = await fetch(BASE + '/v1/runs', { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(refused.status, 401, 'the revoked key is refused');

  // The console link of `synaps dev`: the fragment signs in and is removed from the URL.
  const linkCtx = await browser.newContext();
  const linked = await linkCtx.newPage();
  watch(linked, 'fragment');
  await linked.goto(`${BASE}/#token=${encodeURIComponent(ADMIN)}`);
  await linked.getByRole('heading', { name: 'Runs' }).waitFor();
  assert.ok(!linked.url().includes('token'), `the token left the URL: ${linked.url()}`);
  await linkCtx.close();

  // A viewer is offered nothing it may not do.
  const pending = (await call(ADMIN, 'POST', '/v1/commands/submit', { kind: 'prompt', input: { text: 'for the viewer' }, tags: ['review'] })).runId;
  await until('viewer run held', async () => (await call(ADMIN, 'GET', `/v1/runs/${pending}`)).status === 'awaiting_approval');
  const viewerCtx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const viewer = await viewerCtx.newPage();
  watch(viewer, 'viewer');
  viewer.setDefaultTimeout(T);
  await viewer.goto(BASE + '/');
  await viewer.getByLabel('Token').fill(VIEWER);
  await viewer.getByRole('button', { name: 'Sign in' }).click();
  await viewer.locator(`tr[data-run-id="${pending}"]`).waitFor();
  for (const name of ['Cancel selected', 'Cancel all matching']) {
    assert.equal(await viewer.getByRole('button', { name: new RegExp(name) }).count(), 0, `viewer sees ${name}`);
  }
  assert.equal(await viewer.getByRole('checkbox').count(), 0);
  for (const name of ['Submit', 'Queues', 'Workers', 'API keys']) {
    assert.equal(await viewer.getByRole('link', { name, exact: true }).count(), 0, `viewer sees ${name}`);
  }
  await viewer.getByRole('link', { name: 'Flow', exact: true }).click();
  await viewer.getByRole('heading', { name: 'Flow control' }).waitFor();
  await viewer.locator('tr[data-flow-route="slower"]').waitFor();
  await viewer.goto(`${BASE}/schedules/hourly-report`);
  await viewer.getByRole('heading', { name: 'Schedule hourly-report' }).waitFor();
  assert.equal(await viewer.getByRole('button', { name: /Run now|Backfill/ }).count(), 0, 'viewer may not run schedules');
  await viewer.goto(`${BASE}/runs/${pending}`);
  await viewer.locator('h1 .badge-awaiting_approval').waitFor();
  assert.equal(await viewer.getByRole('button', { name: 'Cancel' }).count(), 0);
  await viewer.getByRole('link', { name: /^Approvals/ }).click();
  await viewer.getByRole('article').filter({ hasText: 'for the viewer' }).waitFor();
  assert.equal(await viewer.getByRole('button', { name: /Approve|Reject/ }).count(), 0);
  await axe(viewer, 'viewer-approvals');
  await viewerCtx.close();

  // The other tenant sees its own run only.
  const otherCtx = await browser.newContext();
  const other = await otherCtx.newPage();
  watch(other, 'other');
  other.setDefaultTimeout(T);
  await other.goto(BASE + '/');
  await other.getByLabel('Token').fill(OTHER);
  await other.getByRole('button', { name: 'Sign in' }).click();
  await other.locator(`tr[data-run-id="${foreign.runId}"]`).waitFor();
  await other.locator(`tr[data-run-id="${foreignLive.runId}"]`).waitFor();
  assert.equal(await other.locator('tr[data-run-id]').count(), 2, 'the other tenant sees its two runs only');
  assert.equal(await other.getByLabel('Tenant', { exact: true }).count(), 0, 'no tenant filter for a tenant token');
  await other.goto(`${BASE}/runs/${runId}`);
  await other.getByText(/not found|no run/i).first().waitFor();
  await other.getByRole('link', { name: 'Schedules' }).click();
  await other.getByText('No schedules.', { exact: false }).waitFor();
  await other.getByRole('link', { name: 'Usage', exact: true }).click();
  await other.getByRole('table', { name: 'Usage by day, route and model' }).waitFor();
  const otherUsage = await call(OTHER, 'GET', '/v1/usage?groupBy=');
  assert.ok(otherUsage.totals.tasks <= 2, `the other tenant's usage is its two runs: ${otherUsage.totals.tasks}`);
  assert.ok((await other.locator('tr[data-usage-row]').count()) <= 1, 'the other tenant sees no usage of ours');
  // Flow: none of our keys or threads.
  await other.getByRole('link', { name: 'Flow', exact: true }).click();
  await other.getByText('No task with a concurrency key is running or waiting.').waitFor();
  await other.getByText('No run waits for its thread.').waitFor();
  await other.goto(`${BASE}/schedules/hourly-report`);
  await other.getByText(/not found/i).first().waitFor();
  await otherCtx.close();

  if (problems.length) throw new Error('problems:\n' + problems.join('\n'));
  console.log('console e2e: all checks passed');
} catch (e) {
  failed = true;
  console.error('console e2e FAILED:', e);
  if (problems.length) console.error('problems before it:\n' + problems.join('\n'));
  for (const p of browser.contexts()) {
    for (const pg of p.pages()) {
      await pg.screenshot({ path: join(SHOTS, `failure-${Date.now()}.png`), fullPage: true }).catch(() => {});
    }
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
