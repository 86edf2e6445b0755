import { Entity, stringifyEntityRef } from '@backstage/catalog-model';
import {
  ConflictError,
  NotFoundError,
  ServiceUnavailableError,
} from '@backstage/errors';
import {
  ANNOTATION_KUBERNETES_CLUSTER,
  ANNOTATION_KUBERNETES_ID,
  ANNOTATION_KUBERNETES_LABEL_SELECTOR,
  ANNOTATION_KUBERNETES_NAMESPACE,
} from '@ferry/plugin-ferry-common';
import { WorkloadSummary } from '@ferry/plugin-ferry-node';
import { ClusterRegistry, FerryCluster } from '../Clusters/ClusterRegistry';

/** An entity's workload and the cluster it runs in. */
export interface LocatedWorkload {
  cluster: FerryCluster;
  workload: WorkloadSummary;
}

/** How the Kubernetes plugin would select an entity's workloads, or undefined when it would not. */
export function kubernetesSelectorOf(entity: Entity):
  | {
      labelSelector: Record<string, string>;
      namespace?: string;
      cluster?: string;
    }
  | undefined {
  const annotations = entity.metadata.annotations ?? {};
  const namespace = annotations[ANNOTATION_KUBERNETES_NAMESPACE] || undefined;
  const cluster = annotations[ANNOTATION_KUBERNETES_CLUSTER] || undefined;
  const selectorText = annotations[ANNOTATION_KUBERNETES_LABEL_SELECTOR];
  if (selectorText) {
    const labelSelector: Record<string, string> = {};
    for (const term of selectorText.split(',')) {
      const [key, value, ...rest] = term.split('=').map(s => s.trim());
      if (!key || value === undefined || rest.length > 0) return undefined;
      labelSelector[key] = value;
    }
    return { labelSelector, namespace, cluster };
  }
  const id = annotations[ANNOTATION_KUBERNETES_ID];
  if (id) {
    return {
      labelSelector: { [ANNOTATION_KUBERNETES_ID]: id },
      namespace,
      cluster,
    };
  }
  return undefined;
}

/**
 * Finds the Deployment or StatefulSet behind a catalog entity the way the
 * Kubernetes plugin does: the `backstage.io/kubernetes-label-selector`, or the
 * `backstage.io/kubernetes-id` label, in `backstage.io/kubernetes-namespace`
 * when given, in every cluster (or the one `backstage.io/kubernetes-cluster` names).
 */
export class WorkloadLocator {
  constructor(private readonly clusters: ClusterRegistry) {}

  async locate(entity: Entity): Promise<LocatedWorkload> {
    const entityRef = stringifyEntityRef(entity);
    const selector = kubernetesSelectorOf(entity);
    if (!selector) {
      throw new NotFoundError(
        `${entityRef} has no Kubernetes mapping: add the ${ANNOTATION_KUBERNETES_ID} annotation (the value of the workload's ${ANNOTATION_KUBERNETES_ID} label) or a valid ${ANNOTATION_KUBERNETES_LABEL_SELECTOR} to its catalog-info.yaml`,
      );
    }
    const clusters = selector.cluster
      ? [this.clusters.get(selector.cluster)]
      : this.clusters.list();
    const found: LocatedWorkload[] = [];
    const unreachable: string[] = [];
    for (const cluster of clusters) {
      try {
        const workloads = await this.clusters.call(cluster, client =>
          client.listWorkloads({
            namespace: selector.namespace,
            labelSelector: selector.labelSelector,
          }),
        );
        found.push(...workloads.map(workload => ({ cluster, workload })));
      } catch (error) {
        if (error instanceof ServiceUnavailableError) {
          unreachable.push(cluster.name);
          continue;
        }
        throw error;
      }
    }
    const where = `${
      selector.namespace ? `namespace ${selector.namespace}` : 'any namespace'
    } of ${clusters.map(c => c.name).join(', ') || 'no cluster'}`;
    const labels = Object.entries(selector.labelSelector)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    if (found.length === 1) return found[0];
    if (found.length > 1) {
      throw new ConflictError(
        `${entityRef} matches ${found.length} workloads (${found
          .map(
            f =>
              `${f.cluster.name}/${f.workload.namespace}/${f.workload.kind}/${f.workload.name}`,
          )
          .join(
            ', ',
          )}); Ferry manages one workload per entity: narrow it with ${ANNOTATION_KUBERNETES_NAMESPACE} or ${ANNOTATION_KUBERNETES_CLUSTER}`,
      );
    }
    if (unreachable.length > 0) {
      throw new ServiceUnavailableError(
        `Cannot find the workload of ${entityRef}: cluster ${unreachable.join(
          ', ',
        )} did not answer; try again when it is back`,
      );
    }
    throw new NotFoundError(
      `No Deployment or StatefulSet labelled ${labels} in ${where}; check the Kubernetes annotations of ${entityRef}`,
    );
  }
}
