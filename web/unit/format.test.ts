import { describe, expect, test } from 'vitest';
import { between, errorText, formatBytes, formatDuration, formatTime } from '../src/format';

describe('formatDuration', () => {
  test('milliseconds, seconds with a decimal, then minutes and seconds', () => {
    expect(formatDuration(0)).toBe('0 ms');
    expect(formatDuration(999.4)).toBe('999 ms');
    expect(formatDuration(1500)).toBe('1.5 s');
    expect(formatDuration(59_949)).toBe('59.9 s');
    expect(formatDuration(61_000)).toBe('1 min 1 s');
    expect(formatDuration(3_600_000)).toBe('60 min 0 s');
  });
  test('a negative or non-finite span has no duration', () => {
    expect(formatDuration(-1)).toBe('—');
    expect(formatDuration(Number.NaN)).toBe('—');
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('—');
  });
});

test('between two instants, or none without a start', () => {
  expect(between('2026-12-06T10:00:00Z', '2026-12-06T10:00:02.500Z')).toBe('2.5 s');
  expect(between(null, '2026-12-06T10:00:00Z')).toBe('—');
});

test('formatBytes', () => {
  expect(formatBytes(512)).toBe('512 B');
  expect(formatBytes(2048)).toBe('2.0 KB');
  expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MB');
});

test('formatTime: a missing time is a dash, a bad one is shown as given', () => {
  expect(formatTime(null)).toBe('—');
  expect(formatTime(undefined)).toBe('—');
  expect(formatTime('not a time')).toBe('not a time');
});

test('errorText: the API\'s {code, message} (and a run\'s task), a plain string, or nothing', () => {
  expect(errorText({ code: 'cancelled', message: 'cancelled by admin' })).toBe('cancelled: cancelled by admin');
  expect(errorText({ code: 'provider_error', message: 'boom', task: 'main' })).toBe('provider_error: boom (task main)');
  expect(errorText('legacy text')).toBe('legacy text');
  expect(errorText(null)).toBe('');
});
