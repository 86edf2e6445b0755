// The code steps of Ferry's plugin READMEs, applied to an app from
// @backstage/create-app as an adopter would make them by hand: the lines the
// READMEs show, put where they say. Fails, naming the file, when the generated
// code no longer has the place a step refers to: then the README is wrong.
//   node applyCodeSteps.mjs <new|legacy> <app dir>
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [template, app] = process.argv.slice(2);

function edit(file, steps) {
  const path = join(app, file);
  let text = readFileSync(path, 'utf8');
  for (const [what, change] of steps) {
    const next = change(text);
    if (next === text) {
      throw new Error(`${file}: cannot ${what}; the README step no longer fits the generated app`);
    }
    text = next;
  }
  writeFileSync(path, text);
}

// @ferry/plugin-ferry-backend README, "Installing" and "Trying it without a cluster".
edit('packages/backend/src/index.ts', [
  [
    'import ferryPermissionPolicyModule',
    t => t.replace(
      /(import \{ createBackend \} from '@backstage\/backend-defaults';\n)/,
      `$1import { ferryPermissionPolicyModule } from '@ferry/plugin-ferry-backend';\n`,
    ),
  ],
  [
    'remove the allow-all policy module',
    t => t.replace(
      /backend\.add\(\s*import\('@backstage\/plugin-permission-backend-module-allow-all-policy'\),?\s*\);\n/,
      '',
    ),
  ],
  [
    'add ferryPermissionPolicyModule after the permission backend',
    t => t.replace(
      /(backend\.add\(import\('@backstage\/plugin-permission-backend'\)\);\n)/,
      '$1backend.add(ferryPermissionPolicyModule);\n',
    ),
  ],
  [
    'add the Ferry backend plugin and the demo module',
    t => t.replace(
      /\nbackend\.start\(\);/,
      `\nbackend.add(import('@ferry/plugin-ferry-backend'));\nbackend.add(import('@ferry/plugin-ferry-backend-module-demo'));\n\nbackend.start();`,
    ),
  ],
]);

if (template === 'legacy') {
  // @ferry/plugin-ferry README, "Legacy frontend system".
  edit('packages/app/src/App.tsx', [
    [
      'import FerryPage',
      t => `import { FerryPage } from '@ferry/plugin-ferry';\n${t}`,
    ],
    [
      'add the /ferry route to FlatRoutes',
      t => t.replace(/(\n(\s*)<\/FlatRoutes>)/, `\n$2  <Route path="/ferry" element={<FerryPage />} />$1`),
    ],
  ]);
  edit('packages/app/src/components/catalog/EntityPage.tsx', [
    [
      'import EntityFerryContent',
      t => `import { EntityFerryContent, isFerryAvailable } from '@ferry/plugin-ferry';\n${t}`,
    ],
    [
      'add the Spot tab to serviceEntityPage',
      t => t.replace(
        /(const serviceEntityPage = \(\s*<EntityLayout>\n)/,
        `$1    <EntityLayout.Route path="/spot" title="Spot" if={isFerryAvailable}>\n      <EntityFerryContent />\n    </EntityLayout.Route>\n\n`,
      ),
    ],
  ]);
}
