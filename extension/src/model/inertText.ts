/**
 * Text from an agent, its VM, GitHub or the broker, made safe for the VS Code surfaces that turn
 * `[label](command:…)`, `[label](https://…)` and `[label](file:…)` into clickable links:
 * notifications and the prompts of input boxes. Clicking such a link in a notification runs the
 * command with its arguments, so an agent could otherwise hand the reviewer a one-click way out
 * of its VM. A zero-width space between `]` and `(` keeps the text as it reads and breaks the link.
 */
export function inertText(text: string): string {
  return text.replace(/\]\(/g, ']\u200b(');
}
