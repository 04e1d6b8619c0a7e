// The token lives in this tab's sessionStorage only: never in localStorage, a cookie or a URL
// sent to the server. `synaps dev` links to `/#token=…`; the fragment is read once and removed.
const KEY = 'synaps.token';

export function takeTokenFromFragment(): void {
  const hash = window.location.hash;
  if (!hash.startsWith('#')) return;
  const params = new URLSearchParams(hash.slice(1));
  const token = params.get('token');
  if (token === null) return;
  if (token !== '') sessionStorage.setItem(KEY, token);
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', window.location.pathname + window.location.search +
    (rest ? '#' + rest : ''));
}

export function getToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setToken(token: string): void {
  sessionStorage.setItem(KEY, token);
}

export function clearToken(): void {
  sessionStorage.removeItem(KEY);
}
