import { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import {
  ListReason,
  ObjectEvent,
  Reflector,
} from '../../src/kube/informers/Reflector';
import { LocalControlPlane } from './LocalControlPlane';
import { eventually } from './until';

// A real control plane answers in milliseconds, but a busy two-core machine can stall it.
jest.setTimeout(60_000);

const CONFIG_MAPS = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
};

describe('Reflector on a real API server', () => {
  let cluster: LocalControlPlane;
  let core: CoreV1Api;
  let namespaces = 0;
  const reflectors: Reflector<V1ConfigMap>[] = [];

  beforeAll(async () => {
    cluster = await LocalControlPlane.start({
      controllerManager: false,
      scheduler: false,
      kwok: false,
      // Watches go straight to etcd, whose history the test compacts at will;
      // the API server itself compacts nothing behind the test's back.
      apiServerFlags: ['--watch-cache=false', '--etcd-compaction-interval=0'],
    });
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  }, 180_000);

  afterEach(() => {
    reflectors.splice(0).forEach(reflector => reflector.stop());
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  async function freshNamespace(): Promise<string> {
    const name = `reflector-${++namespaces}`;
    await core.createNamespace({ body: { metadata: { name } } });
    return name;
  }

  function configMap(namespace: string, name: string, data = {}) {
    return core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name, labels: { app: 'cache' } }, data },
    });
  }

  function reflect(
    namespace: string,
    extra: { watchTimeoutSeconds?: number } = {},
  ) {
    const events: ObjectEvent<V1ConfigMap>[] = [];
    const lists: ListReason[] = [];
    const reflector = new Reflector<V1ConfigMap>({
      kubeConfig: cluster.kubeConfig(),
      type: CONFIG_MAPS,
      namespace,
      labelSelector: 'app=cache',
      onChange: event => events.push(event),
      onList: reason => lists.push(reason),
      ...extra,
    });
    reflectors.push(reflector);
    return { reflector, events, lists };
  }

  const names = (reflector: Reflector<V1ConfigMap>) =>
    reflector
      .list()
      .map(cm => cm.metadata!.name)
      .sort();

  it('lists, then follows every change through the watch', async () => {
    const namespace = await freshNamespace();
    await configMap(namespace, 'a');
    await configMap(namespace, 'b');
    const { reflector, events, lists } = reflect(namespace);
    await reflector.start();
    expect(reflector.synced).toBe(true);
    expect(names(reflector)).toEqual(['a', 'b']);
    expect(events.map(e => [e.type, e.object.metadata!.name])).toEqual([
      ['ADDED', 'a'],
      ['ADDED', 'b'],
    ]);
    expect(reflector.get(`${namespace}/a`)).toMatchObject({
      kind: 'ConfigMap',
      metadata: { name: 'a', namespace },
    });

    events.length = 0;
    await configMap(namespace, 'c');
    await core.patchNamespacedConfigMap({
      namespace,
      name: 'a',
      body: [{ op: 'add', path: '/data', value: { role: 'primary' } }],
    });
    await core.deleteNamespacedConfigMap({ namespace, name: 'b' });
    await eventually(() =>
      expect(events.map(e => [e.type, e.object.metadata!.name])).toEqual([
        ['ADDED', 'c'],
        ['MODIFIED', 'a'],
        ['DELETED', 'b'],
      ]),
    );
    expect(names(reflector)).toEqual(['a', 'c']);
    expect(reflector.get(`${namespace}/a`)?.data).toEqual({ role: 'primary' });
    expect(lists).toEqual(['initial']);
  });

  it('watches on from its last resourceVersion when the server ends a watch, without listing again', async () => {
    const namespace = await freshNamespace();
    const { reflector, events, lists } = reflect(namespace, {
      watchTimeoutSeconds: 1,
    });
    await reflector.start();
    // Let the server end a few watches.
    await new Promise(resolve => setTimeout(resolve, 3_500));
    await configMap(namespace, 'late');
    await eventually(() => expect(names(reflector)).toEqual(['late']));
    expect(events.map(e => e.type)).toEqual(['ADDED']);
    expect(lists).toEqual(['initial']);
  });

  it('lists again when its resourceVersion has expired (410 Gone), and reports the difference', async () => {
    const namespace = await freshNamespace();
    await configMap(namespace, 'kept');
    const { reflector, events, lists } = reflect(namespace, {
      watchTimeoutSeconds: 2,
    });
    await reflector.start();
    const before = reflector.resourceVersion;

    // History moves on elsewhere in the cluster and is compacted away, so that
    // when the server ends the watch, watching on from `before` is refused.
    const elsewhere = await freshNamespace();
    for (let i = 0; i < 5; i++) {
      await core.createNamespacedSecret({
        namespace: elsewhere,
        body: { metadata: { name: `s${i}` } },
      });
    }
    const compactedAt = await cluster.compactEtcd();
    expect(compactedAt).toBeGreaterThan(Number(before));

    await eventually(() => expect(lists).toEqual(['initial', 'expired']));
    expect(Number(reflector.resourceVersion)).toBeGreaterThanOrEqual(
      compactedAt,
    );
    // Nothing it watches changed, so the new list reports nothing new.
    expect(events.map(e => [e.type, e.object.metadata!.name])).toEqual([
      ['ADDED', 'kept'],
    ]);

    // And it watches on after the list.
    await configMap(namespace, 'after');
    await eventually(() => expect(names(reflector)).toEqual(['after', 'kept']));
  });
});
