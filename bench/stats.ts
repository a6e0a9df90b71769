/** Median of a non-empty list. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** `median (min–max, n runs)` in milliseconds. */
export function describeMs(values: number[]): string {
  const min = Math.min(...values);
  const max = Math.max(...values);
  return `${Math.round(median(values))} ms (min ${Math.round(min)}, max ${Math.round(max)}, ${values.length} runs)`;
}

/** Resident and proportional set size of a process from /proc, in KiB. */
export function memoryKiB(pid: number): { rssKiB: number; pssKiB: number } {
  const text = require('node:fs').readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8') as string;
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: field('Rss'), pssKiB: field('Pss') };
}
