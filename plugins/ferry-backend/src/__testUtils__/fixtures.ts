import {
  coreServices,
  createServiceFactory,
  HttpAuthService,
} from '@backstage/backend-plugin-api';
import { mockCredentials, mockServices } from '@backstage/backend-test-utils';
import { Entity } from '@backstage/catalog-model';

/** A catalog component owned by a group, with the given annotations. */
export function component(
  name: string,
  owner: string,
  annotations: Record<string, string>,
): Entity {
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name, namespace: 'default', annotations },
    spec: { type: 'service', lifecycle: 'production', owner },
    relations: [{ type: 'ownedBy', targetRef: `group:default/${owner}` }],
  };
}

/** The example entities of examples/entities.yaml, and a few broken ones. */
export const TEST_ENTITIES: Entity[] = [
  component('session-store', 'platform-team', {
    'backstage.io/kubernetes-id': 'session-store',
    'backstage.io/kubernetes-namespace': 'payments',
    'ferry.dev/spot': 'enabled',
    'ferry.dev/permanent-ratio': '0.34',
    'ferry.dev/availability-target': '0.999',
    'ferry.dev/migration': 'valkey',
  }),
  component('job-queue', 'platform-team', {
    'backstage.io/kubernetes-id': 'job-queue',
    'backstage.io/kubernetes-namespace': 'jobs',
    'ferry.dev/spot': 'enabled',
    'ferry.dev/permanent-ratio': '0.3',
    'ferry.dev/availability-target': '0.995',
    'ferry.dev/migration': 'checkpoint',
  }),
  component('agent-memory', 'data-team', {
    'backstage.io/kubernetes-id': 'agent-memory',
    'backstage.io/kubernetes-namespace': 'assistants',
    'ferry.dev/spot': 'disabled',
  }),
  // Malformed annotations, and a workload that does not exist.
  component('typo-store', 'platform-team', {
    'backstage.io/kubernetes-id': 'typo-store',
    'ferry.dev/spot': 'yes',
    'ferry.dev/permanent-ratio': 'lots',
  }),
  // Opted in, but nothing says where it runs.
  component('plain-service', 'platform-team', { 'ferry.dev/spot': 'enabled' }),
];

/** Group memberships of the test users (the default mock knows only the user itself). */
const MEMBERSHIPS: Record<string, string[]> = {
  'user:default/guest': ['group:default/platform-team'],
  'user:default/dana': ['group:default/data-team'],
};

/** A UserInfoService that knows the test users' groups. */
export const testUserInfoFactory = createServiceFactory({
  service: coreServices.userInfo,
  deps: {},
  factory: () => ({
    async getUserInfo(credentials) {
      const userEntityRef = (credentials.principal as { userEntityRef: string })
        .userEntityRef;
      return {
        userEntityRef,
        ownershipEntityRefs: [
          userEntityRef,
          ...(MEMBERSHIPS[userEntityRef] ?? []),
        ],
      };
    },
  }),
});

const MOCK_SERVICE_TOKEN_PREFIX = 'mock-service-token:';

/**
 * The mock HttpAuthService, except that a mock service token issued on behalf
 * of a user authenticates as that user *with the issuing service as actor*, as
 * real on-behalf-of tokens do. The permission backend calls Ferry's
 * apply-conditions endpoint with such a token, and the permissions registry
 * refuses user credentials that have no actor.
 */
export const onBehalfOfAwareHttpAuthFactory = createServiceFactory({
  service: coreServices.httpAuth,
  deps: { plugin: coreServices.pluginMetadata },
  factory: ({ plugin }) => {
    const inner = mockServices.httpAuth({
      pluginId: plugin.getId(),
      defaultCredentials: mockCredentials.user(),
    });
    return {
      credentials: (async (req: any, options?: any) => {
        const header = req.headers.authorization;
        const token =
          typeof header === 'string'
            ? header.match(/^Bearer[ ]+(\S+)$/i)?.[1]
            : undefined;
        if (token?.startsWith(MOCK_SERVICE_TOKEN_PREFIX)) {
          const { sub, obo } = JSON.parse(
            token.slice(MOCK_SERVICE_TOKEN_PREFIX.length),
          );
          if (obo)
            return mockCredentials.user(obo, { actor: { subject: sub } });
        }
        return inner.credentials(req, options);
      }) as HttpAuthService['credentials'],
      issueUserCookie: (res, options) => inner.issueUserCookie(res, options),
    };
  },
});
