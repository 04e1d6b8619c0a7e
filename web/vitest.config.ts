// Unit tests of the console's pure functions (web/unit/, mirroring web/src/): formatting, the
// runs filter as a query string, the control diff, the task graph's and the waterfall's layout,
// waiting reasons. Run by ctest (console_unit_test) with `vitest run`; no browser, no DOM.
import { defineConfig, mergeConfig } from 'vitest/config';
import vite from './vite.config';

export default mergeConfig(
  vite,
  defineConfig({
    test: {
      include: ['unit/**/*.test.{ts,tsx}'],
      environment: 'node',
      // Dates print in one zone whatever the machine's.
      env: { TZ: 'UTC' },
    },
  }),
);
