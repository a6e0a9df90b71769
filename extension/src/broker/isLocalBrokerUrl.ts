/** Whether the URL points at this machine, where the extension may start the broker itself. */
export function isLocalBrokerUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host === '::1';
  } catch {
    return false;
  }
}
