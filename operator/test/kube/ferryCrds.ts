import fs from 'node:fs';
import path from 'node:path';
import {
  ApiextensionsV1Api,
  KubeConfig,
  V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { parse } from 'yaml';
import { apiRequest } from '../../src/kube/client/apiRequest';
import { until } from './until';

const CRD_DIR = path.resolve(__dirname, '../../chart/crds');

/** The CRDs of operator/chart/crds, as Helm would install them. */
export function chartCrds(): V1CustomResourceDefinition[] {
  return fs
    .readdirSync(CRD_DIR)
    .filter(file => file.endsWith('.yaml'))
    .map(file => parse(fs.readFileSync(path.join(CRD_DIR, file), 'utf8')));
}

/**
 * Creates Ferry's CRDs and waits until the API server serves them. They are sent
 * as written: client-node's typed models would drop `default`, `enum` and the
 * `x-kubernetes-*` keys of a plain object, whose model names differ.
 */
export async function installFerryCrds(kc: KubeConfig): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const crds = chartCrds();
  await Promise.all(
    crds.map(body =>
      apiRequest(
        kc,
        'POST',
        '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
        { body },
      ),
    ),
  );
  for (const crd of crds) {
    await until(`the CRD ${crd.metadata!.name} to be established`, async () =>
      (
        await api.readCustomResourceDefinition({ name: crd.metadata!.name! })
      ).status?.conditions?.some(
        c => c.type === 'Established' && c.status === 'True',
      ),
    );
  }
}
