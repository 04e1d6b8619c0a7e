// The tenant's live feed (GET /v1/events): any ledger event marks the run lists and that run
// stale, so TanStack Query refetches what is on screen. Bursts are coalesced to one refetch
// per 300 ms; no polling loop. The installation scope, which reads every tenant's runs, follows
// every tenant's events (`?tenant=*`), so another tenant's list is live too.
import { useQueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import { followEvents } from './sse';

export function useTenantFeed(everyTenant: boolean): void {
  const client = useQueryClient();
  useEffect(() => {
    const abort = new AbortController();
    const runs = new Set<string>();
    let timer: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      timer = null;
      void client.invalidateQueries({ queryKey: ['runs'] });
      for (const id of runs) void client.invalidateQueries({ queryKey: ['run', id] });
      runs.clear();
    };
    followEvents(
      everyTenant ? '/v1/events?tenant=*' : '/v1/events',
      (m) => {
        if (m.event === 'ready' || m.event === 'task.progress') return;
        try {
          const e = JSON.parse(m.data) as { runId?: string };
          if (e.runId) runs.add(e.runId);
        } catch {
          return;
        }
        if (timer === null) timer = setTimeout(flush, 300);
      },
      abort.signal,
    );
    return () => {
      abort.abort();
      if (timer !== null) clearTimeout(timer);
    };
  }, [client, everyTenant]);
}
