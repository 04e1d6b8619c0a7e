// Server-Sent Events over fetch: EventSource cannot send an Authorization header, and the token
// must never travel in a URL. Reconnects with Last-Event-ID after a drop, until aborted.
import { authHeaders } from './api';

export interface SseMessage {
  id: string;
  event: string;
  data: string;
}

export function followEvents(
  path: string,
  onMessage: (m: SseMessage) => void,
  signal: AbortSignal,
  onEnd?: () => void,
): void {
  let lastId = '';
  const run = async (): Promise<void> => {
    while (!signal.aborted) {
      try {
        const headers: Record<string, string> = { ...authHeaders(), Accept: 'text/event-stream' };
        if (lastId) headers['Last-Event-ID'] = lastId;
        const res = await fetch(path, { headers, signal, credentials: 'omit', cache: 'no-store' });
        if (!res.ok || !res.body) {
          if (res.status === 401 || res.status === 403 || res.status === 404) return;
          throw new Error('stream refused: ' + res.status);
        }
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        let ended = false;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const m: SseMessage = { id: '', event: 'message', data: '' };
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (field === 'id') m.id = val;
              else if (field === 'event') m.event = val;
              else if (field === 'data') m.data += (m.data ? '\n' : '') + val;
            }
            if (m.id) lastId = m.id;
            if (m.data || m.id) onMessage(m);
            if (m.event === 'end') ended = true;
          }
        }
        if (ended) {
          onEnd?.();
          return;
        }
      } catch {
        if (signal.aborted) return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  void run();
}
