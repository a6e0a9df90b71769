/**
 * A duration for people, whole seconds, largest units first and zero parts left out:
 * 45 s, 2 min 30 s, 3 min, 1 h 5 min. Rounds to the nearest second, never to minutes, so a
 * limit of 150 s is not reported as 3 min.
 */
export function formatDuration(ms: number): string {
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 60) return `${totalSeconds} s`;

  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  const parts = [];
  if (hours > 0) parts.push(`${hours} h`);
  if (minutes > 0) parts.push(`${minutes} min`);
  if (seconds > 0) parts.push(`${seconds} s`);
  return parts.join(' ');
}
