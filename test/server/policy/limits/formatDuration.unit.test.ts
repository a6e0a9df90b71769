import assert from 'node:assert/strict';
import { formatDuration } from '../../../../server/policy/limits/formatDuration';

describe('formatDuration (unit)', () => {
  const cases: Array<[ms: number, text: string]> = [
    [45_000, '45 s'],
    [150_000, '2 min 30 s'],
    [180_000, '3 min'],
    [90_400, '1 min 30 s'],
    [3_900_000, '1 h 5 min'],
    [3_601_000, '1 h 1 s'],
  ];

  for (const [ms, text] of cases) {
    it(`says ${ms} ms is "${text}"`, () => assert.equal(formatDuration(ms), text));
  }
});
