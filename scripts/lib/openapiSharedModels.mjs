// The backend's generated router types its endpoints with the models that
// `generate --server` writes beside it, a second copy of the ones the
// `--client-package` run writes into ferry-common. This points the router at
// ferry-common's models and removes the copy, so each REST type is defined once.
//
// Usage: node openapiSharedModels.mjs <backend generated dir> <models package>
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [generatedDir, modelsPackage] = process.argv.slice(2);
if (!generatedDir || !modelsPackage) {
  console.error(
    'usage: node openapiSharedModels.mjs <backend generated dir> <models package>',
  );
  process.exit(2);
}

const serverApi = join(generatedDir, 'apis', 'Api.server.ts');
const source = readFileSync(serverApi, 'utf8');
const modelImport = /^import \{ (\w+) \} from '\.\.\/models\/\w+\.model';\n/gm;
const names = [...source.matchAll(modelImport)].map(match => match[1]);
if (names.length === 0) {
  console.error(
    `${serverApi} imports no generated models; has the generator changed?`,
  );
  process.exit(1);
}
let rewritten = source.replace(modelImport, '');
const firstCode = rewritten.search(/^(?:\/\*\*|export )/m);
rewritten = `${rewritten.slice(0, firstCode)}import type { ${names
  .sort()
  .join(', ')} } from '${modelsPackage}';\n\n${rewritten.slice(firstCode)}`;
writeFileSync(serverApi, rewritten);
rmSync(join(generatedDir, 'models'), { recursive: true, force: true });
