/**
 * Text a database holds, made safe for one line of the CLI's output: a newline or a
 * terminal escape in it (an application's value, a hostile object name) must not forge
 * output lines, so text with control characters is shown JSON-quoted, and as it is
 * otherwise.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is looked for
  return /[\u0000-\u001f\u007f-\u009f]/.test(text) ? JSON.stringify(text) : text;
}
