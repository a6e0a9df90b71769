import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { bundleRepository } from '../../../client/repoBundle';
import { silentLogger } from '../../../server/log';
import { QemuDriver } from '../../../server/vmm/qemu/QemuDriver';
import { qemuPidsMentioning, sharedImage } from '../../helpers/vmBroker';
import { useSuiteEnv } from '../../helpers/useSuiteEnv';
import { useVmAgentSuite } from '../../helpers/useVmAgentSuite';

/** Fetches a path from the test's upstream through the egress proxy and prints the answer. */
function fetchCommand(port: number): string {
  const script = [
    "require('http').get({ host: '10.0.2.100', port: 3128, path: 'http://127.0.0.1:PORT/from-agent' }, (r) => {",
    "  let body = ''; r.on('data', (d) => (body += d)); r.on('end', () => console.log('fetched: ' + body.trim()));",
    "}).on('error', (e) => console.log('fetch failed: ' + e.message));",
  ]
    .join(' ')
    .replace('PORT', String(port));
  return `node -e "${script}"`;
}

describe('spare VM starts: the next clone launched ahead in a reserved agent directory (vm)', function () {
  this.timeout(15 * 60_000);
  useSuiteEnv({ AGENTVM_TEMPLATES: 'manual' });
  const received: string[] = [];
  const upstream = http.createServer((request, response) => {
    received.push(request.url ?? '');
    response.end(`upstream saw ${request.url}\n`);
  });
  let currentId = '';
  // Before the suite's own hooks, which write the profiles naming its port.
  before(() => new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve)));
  const suite = useVmAgentSuite({
    agentId: () => currentId,
    profiles: () => [
      {
        profile: {
          name: 'spare-fetch',
          command: fetchCommand((upstream.address() as AddressInfo).port),
          memoryMiB: 256,
          vcpus: 1,
          bootTimeoutMs: 120_000,
          timeLimitMs: 0,
          allowedHosts: [`127.0.0.1:${(upstream.address() as AddressInfo).port}`],
        },
      },
    ],
  });
  const agentsDir = () => path.join(suite.harness.dataDir, 'agents');

  after(() => upstream.close());

  /** The agent directory (other than `known` ones) where a spare QEMU waits, once one does. */
  async function spareDir(known: string[]): Promise<string> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const dirs = fs.existsSync(agentsDir()) ? fs.readdirSync(agentsDir()) : [];
      const spare = dirs.find(
        (id) => !known.includes(id) && qemuPidsMentioning(path.join(agentsDir(), id)).length === 1,
      );
      if (spare && fs.existsSync(path.join(agentsDir(), spare, 'qmp.sock'))) {
        // The broker offers it once connected to its QMP, milliseconds after the socket appears.
        await new Promise((resolve) => setTimeout(resolve, 500));
        return spare;
      }
      if (Date.now() > deadline) throw new Error(`no spare QEMU appeared in ${agentsDir()}`);

      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async function readyReason(id: string): Promise<string> {
    const events = await suite.harness.client.events(id);
    const ready = events.find((event) => event.message.startsWith('VM ready'));
    assert.ok(ready, `agent ${id} has no "VM ready" event`);
    return ready.message;
  }

  async function output(id: string): Promise<string> {
    const events = await suite.harness.client.events(id);
    return events
      .filter((event) => event.kind === 'output')
      .map((event) => event.message)
      .join('');
  }

  it('gives the next agent of the shape the directory and QEMU of a spare, whose egress relay is the agent’s', async () => {
    const { harness } = suite;
    await harness.ensureTemplate();
    const repo = await bundleRepository(suite.demoRepo);

    // The first clone of the template finds no spare; it makes the broker prepare one.
    const first = await harness.client.createAgent({ text: 'first', profile: 'spare-fetch', repo });
    currentId = first.id;
    await harness.waitFor(first.id, ['done']);
    assert.match(await readyReason(first.id), /from a template/);
    assert.doesNotMatch(await readyReason(first.id), /launched ahead/);
    assert.match(await output(first.id), /fetched: upstream saw \/from-agent/);

    const reserved = await spareDir([first.id]);
    const [sparePid] = qemuPidsMentioning(path.join(agentsDir(), reserved));

    const second = await harness.client.createAgent({
      text: 'second',
      profile: 'spare-fetch',
      repo,
    });
    currentId = second.id;
    assert.equal(second.id, reserved, 'the agent got the id whose directory holds the spare');
    await harness.waitFor(second.id, ['done']);
    assert.match(await readyReason(second.id), /into a VMM process launched ahead/);
    assert.equal((await harness.client.getAgent(second.id)).bootPath, 'template');
    // Its egress went through its own listener, whose path the spare's relay was launched with.
    assert.match(await output(second.id), /fetched: upstream saw \/from-agent/);
    assert.equal(received.length, 2);
    // The spare's QEMU was the agent's VM, and ended with it.
    assert.equal(qemuPidsMentioning(path.join(agentsDir(), reserved)).length, 0);
    assert.throws(() => process.kill(sparePid, 0));

    // The next spare waits; a broker that stops ends it and removes its directory.
    const next = await spareDir([first.id, second.id]);
    await harness.broker.stop();
    assert.deepEqual(qemuPidsMentioning(agentsDir()), []);
    assert.equal(fs.existsSync(path.join(agentsDir(), next)), false);
    assert.deepEqual(fs.readdirSync(agentsDir()).sort(), [first.id, second.id].sort());

    // A broker that starts with the template there prepares a spare for its first agent.
    await harness.restart();
    const atStart = await spareDir([first.id, second.id]);
    assert.notEqual(atStart, next);
    const third = await harness.client.createAgent({ text: 'third', profile: 'spare-fetch', repo });
    currentId = third.id;
    assert.equal(third.id, atStart);
    await harness.waitFor(third.id, ['done']);
    assert.match(await readyReason(third.id), /launched ahead/);
  });

  it('removes, at the next start, a spare whose broker died without ending it', async () => {
    const { harness } = suite;
    const image = await sharedImage();
    const template = await harness.ensureTemplate();
    // Another driver stands for the broker that was killed: nothing of this broker knows its spare.
    const orphan = path.join(agentsDir(), 'orphanspare');
    const gone = new QemuDriver({ logger: silentLogger });
    const spec = {
      id: 'orphanspare',
      vmDir: orphan,
      image,
      memoryMiB: 256,
      vcpus: 1,
      bootTimeoutMs: 60_000,
    };
    assert.equal(await gone.prepareSpare(spec, template), true);
    assert.equal(qemuPidsMentioning(orphan).length, 1);

    await harness.restart();
    assert.deepEqual(qemuPidsMentioning(orphan), []);
    assert.equal(fs.existsSync(orphan), false);
  });
});
