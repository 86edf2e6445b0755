import type { KubeConfig } from '@kubernetes/client-node';
import type { InformerFactory } from '../../OperatorPorts';
import { Reflector } from './Reflector';

/** Informers on a cluster: one list-then-watch per resource, with the kube config's credentials. */
export function kubeInformers(kubeConfig: KubeConfig): InformerFactory {
  return request =>
    new Reflector({
      kubeConfig,
      type: request.type,
      fieldSelector: request.fieldSelector,
      onChange: request.onChange,
      onList: request.onList,
      onError: request.onError,
    });
}
