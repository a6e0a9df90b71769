import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Broker } from '../../../../server/Broker';
import { silentLogger } from '../../../../server/log';
import { ProfileRegistry } from '../../../../server/profiles/ProfileRegistry';
import { isProcessAlive } from '../../../../server/vmm/pidLock';
import { vmPaths } from '../../../../server/vmm/qemu/vmPaths';
import { fakeVmProcess } from '../../../helpers/fakeVmProcess';
import { leftoverStoppingDriver } from '../../../helpers/imagelessBroker';
import { useSuiteEnv } from '../../../helpers/useSuiteEnv';
import { until } from '../../../helpers/until';

for (const templates of ['auto', 'off']) {
  describe(`an interrupted template build at broker start, templates ${templates} (unit)`, function () {
    this.timeout(30_000);
    useSuiteEnv({ AGENTVM_TEMPLATES: templates });
    let dataDir: string;
    let profilesDir: string;
    const started: number[] = [];

    beforeEach(() => {
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-build-start-'));
      profilesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentvm-build-start-profiles-'));
    });

    afterEach(() => {
      for (const pid of started.splice(0)) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
      for (const dir of [dataDir, profilesDir]) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("stops the build's QEMU and removes its directory (regression: it ran until the next template build)", async () => {
      // The build directory of a broker that was killed (its pid has ended), with its QEMU running.
      const killedBroker = spawnSync(process.execPath, ['-e', '']).pid as number;
      const buildDir = path.join(dataDir, 'templates', `.build-${killedBroker}-0a1b2c3d`);
      fs.mkdirSync(buildDir, { recursive: true });
      const { pidFile } = vmPaths(buildDir);
      const qemu = fakeVmProcess(pidFile);
      started.push(qemu);
      fs.writeFileSync(pidFile, String(qemu));
      const broker = new Broker({
        dataDir,
        port: 0,
        logger: silentLogger,
        driver: leftoverStoppingDriver,
        loadImage: () => {
          throw new Error('no image in this test');
        },
        profiles: new ProfileRegistry([profilesDir]),
        version: 'test',
      });

      await broker.start();
      await broker.stop();

      assert.equal(fs.existsSync(buildDir), false, 'the build directory is gone');
      await until(() => !isProcessAlive(qemu), `the build's QEMU (pid ${qemu}) ended`, 5_000);
    });
  });
}
