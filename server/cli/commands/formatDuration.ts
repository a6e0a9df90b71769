/**
 * A duration as it reads at a glance, rounded down: `45s`, `3m07s`, from an hour on to the
 * minute (`2h05m`), from a day on to the hour (`3d04h`).
 */
export function formatDuration(seconds: number): string {
  const whole = Math.floor(Math.max(0, seconds));
  const days = Math.floor(whole / 86_400);
  const hours = Math.floor((whole % 86_400) / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = whole % 60;
  if (days > 0) return `${days}d${twoDigits(hours)}h`;
  if (hours > 0) return `${hours}h${twoDigits(minutes)}m`;
  if (minutes > 0) return `${minutes}m${twoDigits(rest)}s`;

  return `${rest}s`;
}

function twoDigits(value: number): string {
  return String(value).padStart(2, '0');
}
