// Preloaded with `node --import` by lazy-load.test.ts: records which npm packages the
// kit's own modules require directly, and prints them as JSON on stderr at exit.
// Requires made by the TypeScript loader (tsx) or by packages themselves do not count.
import Module from 'node:module';
import path from 'node:path';
import process from 'node:process';

const root = path.resolve(import.meta.dirname, '../../..');
const kitDirs = ['src', 'migrations', 'mappings', 'infra', 'triggers'].map(
  (dir) => path.join(root, dir) + path.sep,
);
const packages = new Set();
const load = Module._load;
Module._load = function (request, parent, ...rest) {
  const from = parent?.filename;
  const isPackage =
    !request.startsWith('.') && !path.isAbsolute(request) && !Module.isBuiltin(request);
  if (from && isPackage && kitDirs.some((dir) => from.startsWith(dir))) {
    const parts = request.split('/');
    packages.add(request.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]);
  }
  return load.call(this, request, parent, ...rest);
};
process.on('exit', () => {
  process.stderr.write(`\nKIT_PACKAGES ${JSON.stringify([...packages].sort())}\n`);
});
