import {
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { FERRY_GROUP } from '../../src/api/v1alpha1';

// How the portal backend reaches a cluster in these suites: a least-privilege
// service account, as app-config gives it.

export const PORTAL_ACCOUNT = 'ferry-portal';
/** What the portal backend may do in a cluster, and nothing more. */
export const PORTAL_RULES = [
  {
    apiGroups: ['apps'],
    resources: ['statefulsets', 'deployments'],
    verbs: ['get', 'list'],
  },
  {
    apiGroups: [FERRY_GROUP],
    resources: ['spotpolicies'],
    verbs: ['get', 'list', 'create', 'update'],
  },
  { apiGroups: [FERRY_GROUP], resources: ['migrations'], verbs: ['list'] },
];

/** A logger for the backend's client that says nothing. */
export const silentLogger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  child() {
    return silentLogger;
  },
};

/** A service account token for the portal, bound to PORTAL_RULES cluster-wide. */
export async function portalToken(kc: KubeConfig): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespace({ body: { metadata: { name: 'backstage' } } });
  await core.createNamespacedServiceAccount({
    namespace: 'backstage',
    body: { metadata: { name: PORTAL_ACCOUNT } },
  });
  await rbac.createClusterRole({
    body: { metadata: { name: PORTAL_ACCOUNT }, rules: PORTAL_RULES },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: PORTAL_ACCOUNT },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: PORTAL_ACCOUNT,
      },
      subjects: [
        {
          kind: 'ServiceAccount',
          name: PORTAL_ACCOUNT,
          namespace: 'backstage',
        },
      ],
    },
  });
  const request = await core.createNamespacedServiceAccountToken({
    namespace: 'backstage',
    name: PORTAL_ACCOUNT,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  return request.status!.token;
}
