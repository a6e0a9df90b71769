import { randomBytes } from 'node:crypto';

/** A fresh nonce for the webview's script tag: 128 bits from the OS's CSPRNG. */
export function createNonce(): string {
  return randomBytes(16).toString('base64');
}

/** Inputs of the panel's HTML page. */
export interface WebviewPageOptions {
  /** `webview.cspSource`: the only origin styles, fonts and images may come from. */
  cspSource: string;
  nonce: string;
  scriptUri: string;
  styleUri: string;
  title: string;
}

/**
 * The webview page: a strict CSP (nothing by default, the script only by nonce, styles only from
 * the extension's own files, no inline styles) and an empty body the script fills.
 */
export function webviewPage(options: WebviewPageOptions): string {
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${options.nonce}'`,
    `style-src ${options.cspSource}`,
    `font-src ${options.cspSource}`,
    `img-src ${options.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${options.styleUri}">
<title>${escapeHtml(options.title)}</title>
</head>
<body>
<main id="app" aria-live="polite"></main>
<script nonce="${options.nonce}" src="${options.scriptUri}"></script>
</body>
</html>`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
