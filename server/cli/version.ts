import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../config/paths';

export function agentvmVersion(): string {
  const manifest = JSON.parse(
    fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8'),
  ) as { version: string };
  return manifest.version;
}
