import fs from 'node:fs';

/**
 * The UTF-8 text of `file`, or undefined when there is no such file. Any other failure (no
 * permission, an I/O error) throws: only a file that is not there yet is an expected absence.
 */
export function readTextIfPresent(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
