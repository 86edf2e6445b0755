import { createBackendModule } from '@backstage/backend-plugin-api';
import { policyExtensionPoint } from '@backstage/plugin-permission-node/alpha';
import { FerryPermissionPolicy } from './FerryPermissionPolicy';

/** Installs {@link FerryPermissionPolicy} as the portal's permission policy. */
export const ferryPermissionPolicyModule = createBackendModule({
  pluginId: 'permission',
  moduleId: 'ferry-policy',
  register(reg) {
    reg.registerInit({
      deps: { policy: policyExtensionPoint },
      async init({ policy }) {
        policy.setPolicy(new FerryPermissionPolicy());
      },
    });
  },
});
