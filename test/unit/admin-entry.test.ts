// Specification of the entry-point boundary (STYLE: the admin side in its own
// entry point, never loaded on the client's hot path): `shardis/admin` loads
// nothing of the client, and `shardis` loads nothing of the admin. Checked on
// the source's relative imports, followed transitively.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const SRC = join(__dirname, '..', '..', 'src');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["'](\.{1,2}\/[^"']+)["']|import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;

/** Every source file `entry` loads through relative imports (itself included), relative to src/. */
function loadedBy(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      const spec = (match[1] ?? match[2])!;
      const target = join(dirname(file), spec).replace(/\.js$/, '.ts');
      assert.ok(existsSync(target), `${relative(SRC, file)} imports ${spec}, which does not exist`);
      visit(target);
    }
  };
  visit(join(SRC, entry));
  return [...seen].map((f) => relative(SRC, f)).sort();
}

test('shardis/admin loads nothing from src/client', () => {
  const loaded = loadedBy('admin/index.ts');
  assert.ok(loaded.includes('admin/admin.ts'), 'the walk follows imports');
  assert.deepEqual(loaded.filter((f) => f.startsWith('client/')), []);
});

test('shardis (the client) loads nothing from src/admin', () => {
  const loaded = loadedBy('index.ts');
  assert.ok(loaded.some((f) => f.startsWith('client/')), 'the walk follows imports');
  assert.deepEqual(loaded.filter((f) => f.startsWith('admin/')), []);
});
