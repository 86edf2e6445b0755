/*
 * The portal's backend: the catalog, the Kubernetes plugin and Ferry, with guest
 * sign-in for local use.
 */
import { createBackend } from '@backstage/backend-defaults';
import { ferryPermissionPolicyModule } from '@ferry/plugin-ferry-backend';

const backend = createBackend();

backend.add(import('@backstage/plugin-app-backend'));

backend.add(import('@backstage/plugin-auth-backend'));
backend.add(import('@backstage/plugin-auth-backend-module-guest-provider'));

backend.add(import('@backstage/plugin-catalog-backend'));
backend.add(import('@backstage/plugin-catalog-backend-module-logs'));

backend.add(import('@backstage/plugin-permission-backend'));
// Anyone signed in may read a Ferry policy; only an entity's owners may change it.
backend.add(ferryPermissionPolicyModule);

backend.add(import('@backstage/plugin-kubernetes-backend'));

backend.add(import('@ferry/plugin-ferry-backend'));
// Demo mode: the operator in-process on a simulated spot market when no cluster is configured.
backend.add(import('@ferry/plugin-ferry-backend-module-demo'));

backend.start();
