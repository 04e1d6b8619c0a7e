import { useState, type FormEvent } from 'react';
import { api, ApiError, type Me } from '../api';
import { clearToken, setToken } from '../auth';

export function SignInPage({ onSignedIn, error }: { onSignedIn: () => void; error?: string | undefined }) {
  const [value, setValue] = useState('');
  const [problem, setProblem] = useState<string | undefined>(error);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const token = value.trim();
    if (!token) {
      setProblem('Enter an API key or a JWT.');
      return;
    }
    setBusy(true);
    setToken(token);
    try {
      await api<Me>('/v1/whoami');
      onSignedIn();
    } catch (err) {
      clearToken();
      setProblem(err instanceof ApiError && err.status === 401 ? 'That token was refused.' : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="center" id="main">
      <form className="card signin" onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Synaps console</h1>
        <p className="muted">Sign in with an API key or a JWT. It is kept in this tab only.</p>
        <label htmlFor="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={value}
          onChange={(e) => setValue(e.target.value)}
          aria-describedby={problem ? 'signin-error' : undefined}
          aria-invalid={problem ? true : undefined}
        />
        {problem && (
          <p id="signin-error" className="error" role="alert">
            {problem}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
