export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${status}`}>{status.replace('_', ' ')}</span>;
}

export function ErrorText({ error }: { error: Error | null | undefined }) {
  if (!error) return null;
  return <p className="error" role="alert">{error.message}</p>;
}
