import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api, ApiError, type Me, type Page, type RunSummary } from './api';
import { clearToken, getToken } from './auth';
import { Link, navigate, useLocation } from './router';
import { useTenantFeed } from './live';
import { ApiKeysPage } from './pages/ApiKeys';
import { ApprovalsPage } from './pages/Approvals';
import { ControlPage } from './pages/Control';
import { FlowPage } from './pages/Flow';
import { QueuesPage } from './pages/Queues';
import { RunDetailPage } from './pages/RunDetail';
import { RunsPage } from './pages/Runs';
import { SchedulesPage } from './pages/Schedules';
import { UsagePage } from './pages/Usage';
import { SignInPage } from './pages/SignIn';
import { SubmitPage } from './pages/Submit';
import { WorkersPage } from './pages/Workers';

export function App() {
  const [token, setTokenState] = useState(getToken());
  const queryClient = useQueryClient();
  const me = useQuery({
    queryKey: ['me', token],
    queryFn: () => api<Me>('/v1/whoami'),
    enabled: token !== null,
    retry: false,
  });
  const signedOut = token === null || (me.error instanceof ApiError && me.error.status === 401);
  if (signedOut) {
    return (
      <SignInPage
        error={token !== null ? 'That token was refused: check it and sign in again.' : undefined}
        onSignedIn={() => {
          queryClient.clear();
          setTokenState(getToken());
        }}
      />
    );
  }
  if (!me.data) {
    return <main className="center" aria-busy="true"><p>{me.error ? String(me.error.message) : 'Loading…'}</p></main>;
  }
  return (
    <Shell
      me={me.data}
      onSignOut={() => {
        clearToken();
        queryClient.clear();
        setTokenState(null);
        navigate('/');
      }}
    />
  );
}

function Shell({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const { path } = useLocation();
  useTenantFeed(me.installation);
  const held = useQuery({
    queryKey: ['runs', 'awaiting_approval', 'count'],
    queryFn: () => api<Page<RunSummary>>('/v1/runs?status=awaiting_approval&limit=500'),
  });
  const heldCount = held.data?.items.length ?? 0;
  useEffect(() => {
    document.title = 'Synaps console';
  }, [path]);
  const nav: [string, string][] = [
    ['/', 'Runs'],
    ['/approvals', heldCount > 0 ? `Approvals (${heldCount})` : 'Approvals'],
    ...(me.may.submit ? ([['/submit', 'Submit']] as [string, string][]) : []),
    ['/schedules', 'Schedules'],
    ['/usage', 'Usage'],
    ['/control', 'Control'],
    ['/flow', 'Flow'],
    ...(me.may.operate ? ([['/queues', 'Queues'], ['/workers', 'Workers']] as [string, string][]) : []),
    ...(me.may.admin ? ([['/api-keys', 'API keys']] as [string, string][]) : []),
  ];
  const current = (to: string) => (to === '/' ? path === '/' || path.startsWith('/runs') : path.startsWith(to));
  return (
    <div className="shell">
      <a className="skip" href="#main">Skip to content</a>
      <header className="top">
        <span className="brand">Synaps</span>
        <nav aria-label="Main">
          <ul>
            {nav.map(([to, label]) => (
              <li key={to}>
                <Link to={to} aria-current={current(to) ? 'page' : undefined}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span className="who" title={me.id}>
          {me.tenantId} · {me.role}
        </span>
        <button type="button" className="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page path={path} me={me} />
      </main>
    </div>
  );
}

function Page({ path, me }: { path: string; me: Me }) {
  if (path === '/' || path === '/runs') return <RunsPage me={me} />;
  const run = /^\/runs\/([0-9a-f-]{36})$/.exec(path);
  if (run?.[1]) return <RunDetailPage id={run[1]} me={me} />;
  if (path === '/approvals') return <ApprovalsPage me={me} />;
  if (path === '/submit') return <SubmitPage />;
  if (path === '/schedules' || path.startsWith('/schedules/')) return <SchedulesPage me={me} path={path} />;
  if (path === '/usage') return <UsagePage />;
  if (path.startsWith('/control')) return <ControlPage me={me} path={path} />;
  if (path === '/flow') return <FlowPage />;
  if (path === '/queues') return <QueuesPage me={me} />;
  if (path === '/workers') return <WorkersPage />;
  if (path === '/api-keys') return <ApiKeysPage me={me} />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        No page at {path}. <Link to="/">Back to runs</Link>
      </p>
    </section>
  );
}
