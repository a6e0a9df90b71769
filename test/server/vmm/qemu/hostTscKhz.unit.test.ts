import assert from 'node:assert/strict';
import { hostTscKhz } from '../../../../server/vmm/qemu/hostTscKhz';

const noSysfs = '/nonexistent/tsc_freq_khz';

describe('hostTscKhz (unit)', () => {
  it('reads the nominal frequency from an Intel model name', () => {
    const cpuinfo =
      'model name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz\ncpu MHz\t\t: 1199.926\n';

    assert.equal(hostTscKhz(cpuinfo, noSysfs), 2_400_000);
  });

  it('falls back to the reported clock when the model name has no frequency', () => {
    const cpuinfo = 'model name\t: Intel(R) Xeon(R) Processor\ncpu MHz\t\t: 2600.000\n';

    assert.equal(hostTscKhz(cpuinfo, noSysfs), 2_600_000);
  });

  it('returns undefined when nothing in cpuinfo tells the frequency', () => {
    assert.equal(hostTscKhz('processor\t: 0\n', noSysfs), undefined);
  });
});
