/**
 * Sets environment variables for the enclosing mocha suite and puts the old values back after it
 * (undefined removes a variable). Call it before the suite's own `before`, which then sees them.
 */
export function useSuiteEnv(values: Record<string, string | undefined>): void {
  const saved: Record<string, string | undefined> = {};
  const apply = (entries: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(entries)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };

  before(() => {
    for (const name of Object.keys(values)) saved[name] = process.env[name];
    apply(values);
  });
  after(() => apply(saved));
}
