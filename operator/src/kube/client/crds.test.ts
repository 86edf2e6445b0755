import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { SPOT_POLICY_DEFAULTS } from '../../api/v1alpha1';

const CRD_DIR = path.resolve(__dirname, '../../../chart/crds');

function specSchema(file: string) {
  const crd = parse(fs.readFileSync(path.join(CRD_DIR, file), 'utf8'));
  return crd.spec.versions[0].schema.openAPIV3Schema.properties.spec;
}

describe('the CRDs of the chart', () => {
  it('default a SpotPolicy the way the operator does', () => {
    const { properties } = specSchema('ferry.dev_spotpolicies.yaml');
    const defaults = Object.fromEntries(
      Object.keys(SPOT_POLICY_DEFAULTS).map(key => [
        key,
        properties[key]?.default,
      ]),
    );
    expect(defaults).toEqual(SPOT_POLICY_DEFAULTS);
  });
});
