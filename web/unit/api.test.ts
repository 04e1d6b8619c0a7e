import { expect, test } from 'vitest';
import { query } from '../src/api';

test('query leaves empty values out and encodes the rest', () => {
  expect(query({})).toBe('');
  expect(query({ a: undefined, b: '' })).toBe('');
  expect(query({ text: 'bench run 99', metadata: 'shard=42', tag: 'a&b' })).toBe('?text=bench+run+99&metadata=shard%3D42&tag=a%26b');
});
