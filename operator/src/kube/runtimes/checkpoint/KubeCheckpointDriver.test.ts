import type { V1Pod } from '@kubernetes/client-node';
import {
  checkpointedContainer,
  checkpointRefusal,
} from './KubeCheckpointDriver';

function pod(spec: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    metadata: { name: 'cache-0', namespace: 'shop' },
    spec: {
      containers: [{ name: 'valkey', image: 'valkey/valkey:9' }],
      ...spec,
    },
  };
}

describe('what the checkpoint method refuses before touching anything', () => {
  it('moves a plain Valkey pod, with or without the ferry runtime class', () => {
    expect(checkpointRefusal(pod())).toBeUndefined();
    expect(
      checkpointRefusal(pod({ runtimeClassName: 'ferry' })),
    ).toBeUndefined();
  });

  it('refuses a pod with a runtime class of its own, naming it', () => {
    expect(checkpointRefusal(pod({ runtimeClassName: 'kata' }))).toMatch(
      /its own runtime class 'kata'.*only through the runtime class 'ferry'/,
    );
  });

  it('refuses devices', () => {
    const withGpu = pod({
      containers: [
        {
          name: 'valkey',
          image: 'valkey/valkey:9',
          resources: { limits: { 'nvidia.com/gpu': '1' } },
        },
      ],
    });
    expect(checkpointRefusal(withGpu)).toMatch(
      /uses devices \(nvidia\.com\/gpu\)/,
    );
    const hugePages = pod({
      containers: [
        {
          name: 'valkey',
          image: 'valkey/valkey:9',
          resources: { limits: { 'hugepages-2Mi': '64Mi' } },
        },
      ],
    });
    expect(checkpointRefusal(hugePages)).toBeUndefined();
  });

  it('picks the Valkey container of several, and refuses several without one', () => {
    const sidecar = pod({
      containers: [
        { name: 'exporter', image: 'oliver006/redis_exporter' },
        { name: 'valkey', image: 'valkey/valkey:9' },
      ],
    });
    expect(checkpointedContainer(sidecar)?.name).toBe('valkey');
    const two = pod({
      containers: [
        { name: 'a', image: 'x' },
        { name: 'b', image: 'y' },
      ],
    });
    expect(checkpointRefusal(two)).toMatch(/several containers \(a, b\)/);
  });

  it('refuses a shared PID namespace', () => {
    expect(checkpointRefusal(pod({ shareProcessNamespace: true }))).toMatch(
      /shares one PID namespace/,
    );
  });
});
