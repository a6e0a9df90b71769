import type { Services } from '../services';

/** agentvm.showLog: shows the extension's "agentvm" log channel. */
export function showLog(services: Services) {
  return (): void => {
    services.log.show();
  };
}
