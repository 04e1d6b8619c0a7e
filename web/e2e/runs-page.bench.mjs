// Measures the Runs page against a large history (issue #14's budget: interactive in ≤ 1 s with
// 100,000 runs): the time from navigation to the first rows of runs in the table, in headless
// Chromium, for a cold load (a new browser context: index.html, the script, the first page of
// runs) and for warm reloads, on the default list and on a few filters. A measurement, not a
// test: it prints one JSON line per case and fails only when a page never shows a row.
// Each case is measured in RUNS_BENCH_ROUNDS rounds (cold load in a new context, then
// RUNS_BENCH_REPEAT warm reloads); the rounds alternate the order of the cases (ABBA), so a
// machine that gets busier or quieter during the run weighs on every case alike. Each line has
// the median, min and max of the cold loads and of the warm reloads.
//
// Environment: CONSOLE_URL, ADMIN_TOKEN, CHROMIUM (default /usr/bin/chromium),
// RUNS_BENCH_ROUNDS (default 5), RUNS_BENCH_REPEAT (warm reloads per round, default 2).
import { loadavg } from 'node:os';
import { chromium } from 'playwright-core';

const BASE = process.env.CONSOLE_URL;
const TOKEN = process.env.ADMIN_TOKEN;
const ROUNDS = Number(process.env.RUNS_BENCH_ROUNDS || 5);
const REPEAT = Number(process.env.RUNS_BENCH_REPEAT || 2);
if (!BASE || !TOKEN) throw new Error('CONSOLE_URL and ADMIN_TOKEN are required');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
});

// Time to the first row of runs (or to "No runs match." when `none`) after navigating to
// `path`, in ms.
async function firstRows(page, path, none) {
  const t0 = Date.now();
  await page.goto(BASE + path);
  const rows = none ? page.getByText('No runs match.') : page.locator('tr[data-run-id]').first();
  await rows.waitFor({ timeout: 60_000 });
  return Date.now() - t0;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cases = [
  ['newest runs (page 1)', '/'],
  ['tag filter', '/?tag=bench'],
  ['status filter', '/?status=succeeded'],
  ['text filter matching among the newest', '/?text=bench%20run%2099'],
  ['text filter matching one old run', '/?text=bench%20run%2077777'],
  ['every tenant (installation scope)', '/?tenant=*'],
  ['text filter matching nothing', '/?text=no-such-words', true],
  ['metadata filter matching 1% of runs', '/?metadata=shard%3D42'],
  ['metadata filter matching one old run', '/?metadata=order%3D77777'],
  ['metadata filter matching nothing', '/?metadata=shard%3Dnone', true],
];
const cold = new Map(cases.map(([name]) => [name, []]));
const warm = new Map(cases.map(([name]) => [name, []]));
console.log(JSON.stringify({ start: new Date().toISOString(), loadavg: loadavg() }));
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? cases : [...cases].reverse();
    for (const [name, path, none] of order) {
      const ctx = await browser.newContext();
      await ctx.addInitScript((t) => sessionStorage.setItem('synaps.token', t), TOKEN);
      const page = await ctx.newPage();
      cold.get(name).push(await firstRows(page, path, none));
      for (let i = 0; i < REPEAT; i++) warm.get(name).push(await firstRows(page, path, none));
      await ctx.close();
    }
  }
  for (const [name, path] of cases) {
    const c = cold.get(name);
    const w = warm.get(name);
    console.log(JSON.stringify({
      case: name, path,
      coldMedianMs: median(c), coldMinMs: Math.min(...c), coldMaxMs: Math.max(...c),
      warmMedianMs: median(w), warmMinMs: Math.min(...w), warmMaxMs: Math.max(...w), coldMs: c,
    }));
  }
  console.log(JSON.stringify({ end: new Date().toISOString(), loadavg: loadavg() }));
} finally {
  await browser.close();
}
