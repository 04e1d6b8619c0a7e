import { expect, test } from 'vitest';
import { answeredTasks } from '../../src/pages/TaskAnswers';
import { task } from '../helpers';

test('only tasks with an answer text are shown, in the run order', () => {
  const tasks = [
    task('plan', [], { answer: 'step one' }),
    task('wait', ['plan'], { status: 'queued' }),
    task('held', ['plan'], { status: 'awaiting_approval', answer: '' }),
    task('old', [], { answer: null }),
  ];
  expect(answeredTasks(tasks).map((t) => t.name)).toEqual(['plan', 'held']);
});
