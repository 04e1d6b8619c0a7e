import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, type Me } from '../api';
import { formatTime } from '../format';
import { ErrorText } from './common';

interface Key {
  id: string;
  tenantId: string;
  role: string;
  name: string | null;
  createdBy: string | null;
  createdAt: string;
  revokedAt: string | null;
}

export function ApiKeysPage({ me }: { me: Me }) {
  const client = useQueryClient();
  const keys = useQuery({ queryKey: ['api-keys'], queryFn: () => api<{ items: Key[] }>('/v1/api-keys') });
  const [role, setRole] = useState('viewer');
  const [name, setName] = useState('');
  const [tenant, setTenant] = useState('');
  const [created, setCreated] = useState<{ token: string; id: string } | null>(null);
  const create = useMutation({
    mutationFn: () => api<{ token: string; id: string }>('/v1/api-keys', {
      method: 'POST',
      body: { role, ...(name ? { name } : {}), ...(tenant ? { tenantId: tenant } : {}) },
    }),
    onSuccess: (r) => {
      setCreated(r);
      setName('');
      void client.invalidateQueries({ queryKey: ['api-keys'] });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => api(`/v1/api-keys/${id}`, { method: 'DELETE' }),
    onSuccess: () => void client.invalidateQueries({ queryKey: ['api-keys'] }),
  });
  const onCreate = (e: FormEvent) => {
    e.preventDefault();
    setCreated(null);
    create.mutate();
  };
  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">API keys</h1>
      <form className="inline" onSubmit={onCreate} aria-label="Create a key">
        <label htmlFor="key-role">Role</label>
        <select id="key-role" value={role} onChange={(e) => setRole(e.target.value)}>
          {['viewer', 'operator', 'worker', 'admin'].map((r) => <option key={r} value={r}>{r}</option>)}
        </select>
        <label htmlFor="key-name">Name</label>
        <input id="key-name" value={name} onChange={(e) => setName(e.target.value)} />
        {me.installation && (
          <>
            <label htmlFor="key-tenant">Tenant</label>
            <input id="key-tenant" value={tenant} onChange={(e) => setTenant(e.target.value)} placeholder={me.tenantId} />
          </>
        )}
        <button type="submit" disabled={create.isPending}>Create key</button>
      </form>
      <ErrorText error={create.error ?? revoke.error ?? keys.error} />
      {created && (
        <div className="card" role="status">
          <p>The new key, shown this once. Copy it now:</p>
          <pre className="token" aria-label="New token">{created.token}</pre>
        </div>
      )}
      <table>
        <thead><tr><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Tenant</th><th scope="col">Created</th><th scope="col">By</th><th scope="col">State</th><th scope="col"><span className="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {keys.data?.items.map((k) => (
            <tr key={k.id}>
              <td>{k.name ?? k.id.slice(0, 8)}</td>
              <td>{k.role}</td>
              <td>{k.tenantId}</td>
              <td>{formatTime(k.createdAt)}</td>
              <td>{k.createdBy ?? ''}</td>
              <td>{k.revokedAt ? `revoked ${formatTime(k.revokedAt)}` : 'active'}</td>
              <td>{!k.revokedAt && (
                <button type="button" className="danger" disabled={revoke.isPending}
                  onClick={() => window.confirm(`Revoke key ${k.name ?? k.id}?`) && revoke.mutate(k.id)}>Revoke</button>
              )}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
