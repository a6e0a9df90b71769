import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createLogger } from '../../../../server/log';
import { AuditHeadRecorder } from '../../../../server/policy/audit/AuditHeadRecorder';

describe('AuditHeadRecorder (unit)', () => {
  it('logs the head on start, on stop, and when the process exits without a stop', () => {
    const lines: string[] = [];
    const logger = createLogger({ write: (line) => lines.push(line), pretty: false });
    const exit = new EventEmitter();
    let head = { id: 3, hash: 'abc' };
    const recorder = new AuditHeadRecorder({ head: () => head }, logger, { exitSignal: exit });

    recorder.start();
    head = { id: 4, hash: 'def' };
    exit.emit('exit');
    recorder.stop();

    const heads = lines
      .map((line) => JSON.parse(line))
      .filter((line) => line.event === 'audit.head');
    assert.deepEqual(
      heads.map((line) => [line.id, line.hash, line.reason]),
      [
        [3, 'abc', 'start'],
        [4, 'def', 'exit'],
        [4, 'def', 'stop'],
      ],
    );
    assert.equal(exit.listenerCount('exit'), 0);
  });

  it('skips a periodic line when no row was added since the last one', () => {
    const lines: string[] = [];
    const logger = createLogger({ write: (line) => lines.push(line), pretty: false });
    const recorder = new AuditHeadRecorder({ head: () => ({ id: 1, hash: 'h' }) }, logger);

    recorder.record('periodic', true);
    recorder.record('periodic', true);

    assert.equal(lines.length, 1);
  });
});
