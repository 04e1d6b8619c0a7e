// Measures the Runs page against a large history (issue #14's budget: interactive in ≤ 1 s with
// 100,000 runs): the time from navigation to the first rows of runs in the table, in headless
// Chromium, for a cold load (a new browser context: index.html, the script, the first page of
// runs) and for warm reloads, on the default list and on a few filters. A measurement, not a
// test: it prints one JSON line per case and fails only when a page never shows a row.
//
// Environment: CONSOLE_URL, ADMIN_TOKEN, CHROMIUM (default /usr/bin/chromium), RUNS_BENCH_REPEAT.
import { chromium } from 'playwright-core';

const BASE = process.env.CONSOLE_URL;
const TOKEN = process.env.ADMIN_TOKEN;
const REPEAT = Number(process.env.RUNS_BENCH_REPEAT || 5);
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
try {
  for (const [name, path, none] of cases) {
    const ctx = await browser.newContext();
    await ctx.addInitScript((t) => sessionStorage.setItem('synaps.token', t), TOKEN);
    const page = await ctx.newPage();
    const cold = await firstRows(page, path, none);
    const warm = [];
    for (let i = 0; i < REPEAT; i++) warm.push(await firstRows(page, path, none));
    console.log(JSON.stringify({ case: name, path, coldMs: cold, warmMedianMs: median(warm), warmMs: warm }));
    await ctx.close();
  }
} finally {
  await browser.close();
}
