import type { Task } from '../api';

// The tasks that have an answer (`tasks[].answer` of GET /v1/runs/{id}: completed, held for
// approval, or what an interrupted task had streamed), in the run's task order.
export function answeredTasks(tasks: Task[]): Task[] {
  return tasks.filter((t) => typeof t.answer === 'string');
}

// Each task's answer text, under the task's name when the run has more than one task. A long
// answer is also the thread's `answer.md` artifact (docs/worker.md, "Store").
export function TaskAnswers({ tasks }: { tasks: Task[] }) {
  const answered = answeredTasks(tasks);
  if (answered.length === 0) return null;
  return (
    <>
      <h2>{answered.length === 1 ? 'Answer' : 'Answers'}</h2>
      {answered.map((t) => (
        <figure key={t.id} className="task-answer">
          {tasks.length > 1 && <figcaption>{t.name}</figcaption>}
          <pre className="answer" data-testid="task-answer">{t.answer}</pre>
        </figure>
      ))}
    </>
  );
}
