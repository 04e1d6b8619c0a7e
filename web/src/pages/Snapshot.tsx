import { useQuery } from '@tanstack/react-query';
import { type FormEvent } from 'react';
import { api } from '../api';
import { Link, navigate } from '../router';
import { ErrorText } from './common';

// The control registry as it stood at one version (GET /v1/control/snapshot?version=N): what a
// task that ran on that snapshot saw. /control/snapshot is the current one.
interface Snapshot {
  version: number;
  items: Record<string, Record<string, { version: number; spec: unknown }>>;
}

export function SnapshotView({ version }: { version: number | undefined }) {
  const snap = useQuery({
    queryKey: ['control', 'snapshot', version ?? 'current'],
    queryFn: () => api<Snapshot>('/v1/control/snapshot' + (version ? `?version=${version}` : '')),
  });
  const go = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const v = Number(new FormData(e.currentTarget).get('version'));
    if (Number.isInteger(v) && v > 0) navigate(`/control/snapshot/${v}`);
  };
  const s = snap.data;
  const kinds = s ? Object.entries(s.items).filter(([, items]) => Object.keys(items).length > 0) : [];
  return (
    <>
      <h2>Snapshot {s ? `at version ${s.version}` : version ? `at version ${version}` : ''}</h2>
      <form className="inline" onSubmit={go} aria-label="Snapshot version">
        <label htmlFor="snapshot-version">Version</label>
        <input id="snapshot-version" name="version" type="number" min={1} defaultValue={version ?? s?.version ?? ''} key={version ?? 'current'} />
        <button type="submit">Show</button>
        {s && s.version > 1 && <Link to={`/control/snapshot/${s.version - 1}`}>← version {s.version - 1}</Link>}
        {s && version !== undefined && <Link to={`/control/snapshot/${s.version + 1}`}>version {s.version + 1} →</Link>}
        {version !== undefined && <Link to="/control/snapshot">current</Link>}
      </form>
      <ErrorText error={snap.error} />
      {s && kinds.length === 0 && <p className="muted">The registry was empty at version {s.version}.</p>}
      {kinds.map(([kind, items]) => (
        <section key={kind} aria-label={`Snapshot ${kind}`}>
          <h3>{kind}</h3>
          <table>
            <thead><tr><th scope="col">Name</th><th scope="col">Version</th><th scope="col">Spec</th></tr></thead>
            <tbody>
              {Object.entries(items).map(([name, item]) => (
                <tr key={name} data-snapshot-item={`${kind}/${name}`}>
                  <td><Link to={`/control/${kind}/${encodeURIComponent(name)}`}>{name}</Link></td>
                  <td>{item.version}</td>
                  <td>
                    <details>
                      <summary>spec</summary>
                      <pre tabIndex={0}>{JSON.stringify(item.spec, null, 2)}</pre>
                    </details>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </>
  );
}
