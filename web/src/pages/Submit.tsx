import { useMutation } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, ApiError } from '../api';
import { navigate } from '../router';

interface Submitted {
  runId: string;
}

export function SubmitPage() {
  const [kind, setKind] = useState('prompt');
  const [text, setText] = useState('');
  const [prompt, setPrompt] = useState('');
  const [skill, setSkill] = useState('');
  const [route, setRoute] = useState('');
  const [tags, setTags] = useState('');
  const submit = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      api<Submitted>('/v1/commands/submit', { method: 'POST', body }),
    onSuccess: (r) => navigate(`/runs/${r.runId}`),
  });
  const fieldError = (name: string) =>
    submit.error instanceof ApiError && submit.error.field?.split('.')[0] === name ? submit.error.message : undefined;
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const body: Record<string, unknown> = { kind, input: { text } };
    if (prompt.trim()) body.prompt = prompt.trim();
    if (skill.trim()) body.skill = skill.trim();
    if (route.trim()) body.route = route.trim();
    const tagList = tags.split(',').map((t) => t.trim()).filter(Boolean);
    if (tagList.length) body.tags = tagList;
    submit.mutate(body);
  };
  const field = (id: string, label: string, value: string, set: (v: string) => void, hint?: string) => {
    const err = fieldError(id);
    return (
      <div className="field">
        <label htmlFor={`submit-${id}`}>{label}</label>
        <input id={`submit-${id}`} value={value} onChange={(e) => set(e.target.value)}
          aria-invalid={err ? true : undefined} aria-describedby={err ? `submit-${id}-error` : undefined} />
        {hint && <span className="muted">{hint}</span>}
        {err && <span id={`submit-${id}-error`} className="error">{err}</span>}
      </div>
    );
  };
  const inputErr = fieldError('input');
  const otherErr = submit.error && !['input', 'prompt', 'skill', 'route', 'tags'].some((f) => fieldError(f)) ? submit.error.message : undefined;
  return (
    <section aria-labelledby="submit-title">
      <h1 id="submit-title">Submit</h1>
      <form className="card form" onSubmit={onSubmit}>
        <div className="field">
          <label htmlFor="submit-kind">Kind</label>
          <select id="submit-kind" value={kind} onChange={(e) => setKind(e.target.value)}>
            <option value="prompt">prompt</option>
            <option value="agent">agent</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor="submit-input">Input</label>
          <textarea id="submit-input" rows={5} value={text} onChange={(e) => setText(e.target.value)}
            aria-invalid={inputErr ? true : undefined} aria-describedby={inputErr ? 'submit-input-error' : undefined} />
          {inputErr && <span id="submit-input-error" className="error">{inputErr}</span>}
        </div>
        {field('prompt', 'Prompt', prompt, setPrompt, 'a prompt of the control registry (optional)')}
        {field('skill', 'Skill', skill, setSkill, 'optional')}
        {field('route', 'Route', route, setRoute, 'optional')}
        {field('tags', 'Tags', tags, setTags, 'comma-separated')}
        {otherErr && <p className="error" role="alert">{otherErr}</p>}
        <button type="submit" disabled={submit.isPending}>Submit</button>
      </form>
    </section>
  );
}
