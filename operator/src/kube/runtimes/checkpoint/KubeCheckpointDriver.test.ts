import type { V1Pod } from '@kubernetes/client-node';
import {
  LAZY_COPY_MIN_LEAD_MS,
  checkpointedContainer,
  checkpointRefusal,
  checkpointRoute,
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

describe('the route a checkpoint move takes', () => {
  it('takes the lazy route for a Deployment member with time left for the copy', () => {
    expect(checkpointRoute('lazy', 'ReplicaSet', Infinity)).toEqual({
      route: 'lazy',
    });
    expect(
      checkpointRoute('lazy', 'ReplicaSet', LAZY_COPY_MIN_LEAD_MS),
    ).toEqual({ route: 'lazy' });
  });

  it('copies before the switch when the deadline leaves too little for a lazy copy, saying so', () => {
    const { route, why } = checkpointRoute('lazy', 'ReplicaSet', 12_000);
    expect(route).toBe('stop-and-copy');
    expect(why).toMatch(/12 s left before the deadline/);
  });

  it('copies before the switch for a StatefulSet member, whose source goes before its recreation', () => {
    const { route, why } = checkpointRoute('lazy', 'StatefulSet', Infinity);
    expect(route).toBe('stop-and-copy');
    expect(why).toMatch(/StatefulSet/);
  });

  it('keeps stop-and-copy when asked for it', () => {
    expect(checkpointRoute('stop-and-copy', 'ReplicaSet', Infinity)).toEqual({
      route: 'stop-and-copy',
    });
  });
});
