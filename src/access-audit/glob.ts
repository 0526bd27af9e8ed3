/**
 * Compiles globs (`*` any run, `?` one character) into one anchored matcher.
 * Compiled once per rule, so matching is a single regex test on a short field.
 */
export function compileGlobs(
  patterns: readonly string[],
  options: { caseInsensitive?: boolean } = {},
): (value: string) => boolean {
  const source = patterns.map(globToRegexSource).join('|');
  const regex = new RegExp(`^(?:${source})$`, options.caseInsensitive ? 'is' : 's');
  return (value) => regex.test(value);
}

function globToRegexSource(pattern: string): string {
  let source = '';
  for (const char of pattern) {
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else source += char.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return source;
}
