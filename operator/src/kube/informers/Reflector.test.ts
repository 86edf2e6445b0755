import http from 'node:http';
import { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { ListReason, ObjectEvent, Reflector } from './Reflector';

interface Item {
  metadata: { name: string; namespace: string; resourceVersion: string };
  data?: Record<string, string>;
}

const item = (
  name: string,
  resourceVersion: string,
  data?: Record<string, string>,
): Item => ({
  metadata: { name, namespace: 'ns', resourceVersion },
  data,
});

/**
 * An API server that answers with a script: lists return `state`, and each watch
 * plays the next of `watches` (its events, then whether it ends).
 */
async function scriptedApiServer(script: {
  lists: { resourceVersion: string; items: Item[] }[];
  watches: { lines: object[]; end: boolean }[];
}) {
  const requests: string[] = [];
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((request, response) => {
    const url = new URL(request.url!, 'http://localhost');
    requests.push(`${url.pathname}?${url.searchParams}`);
    response.setHeader('content-type', 'application/json');
    if (url.searchParams.get('watch') === 'true') {
      const watch = script.watches.shift();
      response.writeHead(200);
      for (const line of watch?.lines ?? [])
        response.write(`${JSON.stringify(line)}\n`);
      if (watch?.end ?? false) response.end();
      else open.add(response);
      return;
    }
    const list = script.lists.shift()!;
    response.end(
      JSON.stringify({
        kind: 'ConfigMapList',
        metadata: { resourceVersion: list.resourceVersion },
        items: list.items,
      }),
    );
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        // client-node refuses plain HTTP unless told; the server is on loopback.
        skipTLSVerify: true,
      },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return {
    kubeConfig,
    requests,
    close: () => {
      open.forEach(response => response.end());
      return new Promise(resolve => server.close(resolve));
    },
  };
}

async function eventually(check: () => void, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise(resolve => setTimeout(resolve, 10));
    }
  }
}

describe('Reflector', () => {
  it('lists again on 410 Gone and reports what appeared, changed and vanished meanwhile', async () => {
    const api = await scriptedApiServer({
      lists: [
        {
          resourceVersion: '10',
          items: [item('a', '3'), item('b', '4'), item('same', '5')],
        },
        {
          resourceVersion: '20',
          items: [
            item('a', '15', { role: 'primary' }),
            item('c', '18'),
            item('same', '5'),
          ],
        },
      ],
      watches: [
        {
          lines: [
            {
              type: 'ERROR',
              object: {
                kind: 'Status',
                code: 410,
                reason: 'Expired',
                message: 'too old resource version',
              },
            },
          ],
          end: true,
        },
        { lines: [], end: false },
      ],
    });
    const events: ObjectEvent<Item>[] = [];
    const lists: ListReason[] = [];
    const reflector = new Reflector<Item>({
      kubeConfig: api.kubeConfig,
      type: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        plural: 'configmaps',
        namespaced: true,
      },
      namespace: 'ns',
      onChange: event => events.push(event),
      onList: reason => lists.push(reason),
    });
    try {
      await reflector.start();
      await eventually(() => expect(lists).toEqual(['initial', 'expired']));
      await eventually(() => expect(api.requests).toHaveLength(4));
      expect(events.map(e => `${e.type} ${e.object.metadata.name}`)).toEqual([
        'ADDED a',
        'ADDED b',
        'ADDED same',
        'DELETED b',
        'MODIFIED a',
        'ADDED c',
      ]);
      expect(reflector.get('ns/a')?.data).toEqual({ role: 'primary' });
      expect(reflector.get('ns/b')).toBeUndefined();
      expect(reflector.resourceVersion).toBe('20');
      // Each watch starts where the list before it left off.
      expect(api.requests[1]).toContain('resourceVersion=10');
      expect(api.requests[3]).toContain('resourceVersion=20');
    } finally {
      reflector.stop();
      await api.close();
    }
  });

  it('watches on from the last event after a watch ends, without listing again', async () => {
    const api = await scriptedApiServer({
      lists: [{ resourceVersion: '10', items: [] }],
      watches: [
        {
          lines: [
            { type: 'ADDED', object: item('a', '11') },
            {
              type: 'BOOKMARK',
              object: { metadata: { resourceVersion: '12' } },
            },
          ],
          end: true,
        },
        { lines: [{ type: 'MODIFIED', object: item('a', '13') }], end: false },
      ],
    });
    const events: string[] = [];
    const reflector = new Reflector<Item>({
      kubeConfig: api.kubeConfig,
      type: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        plural: 'configmaps',
        namespaced: true,
      },
      onChange: event =>
        events.push(`${event.type} ${event.object.metadata.resourceVersion}`),
    });
    try {
      await reflector.start();
      await eventually(
        () => expect(events).toEqual(['ADDED 11', 'MODIFIED 13']),
        10_000,
      );
      expect(api.requests).toHaveLength(3);
      // The list, the ADDED and the MODIFIED changed the cache; the bookmark did not.
      expect(reflector.generation).toBe(3);
      // The bookmark moved it on without an event.
      expect(api.requests[2]).toContain('resourceVersion=12');
      expect(api.requests[0]).toMatch(/^\/api\/v1\/configmaps\?/);
    } finally {
      reflector.stop();
      await api.close();
    }
  });

  it('keeps no managedFields in its cache: nothing reads them, and they are a large share of every pod', async () => {
    const managed = (name: string, resourceVersion: string) => ({
      ...item(name, resourceVersion),
      metadata: {
        ...item(name, resourceVersion).metadata,
        managedFields: [{ manager: 'kwok', operation: 'Update' }],
      },
    });
    const api = await scriptedApiServer({
      lists: [{ resourceVersion: '10', items: [managed('a', '9')] }],
      watches: [
        { lines: [{ type: 'ADDED', object: managed('b', '11') }], end: false },
      ],
    });
    const events: ObjectEvent<Item>[] = [];
    const reflector = new Reflector<Item>({
      kubeConfig: api.kubeConfig,
      type: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        plural: 'configmaps',
        namespaced: true,
      },
      onChange: event => events.push(event),
    });
    try {
      await reflector.start();
      await eventually(() => expect(events).toHaveLength(2));
      for (const key of ['ns/a', 'ns/b']) {
        expect(reflector.get(key)?.metadata).toBeDefined();
        expect(reflector.get(key)?.metadata).not.toHaveProperty(
          'managedFields',
        );
      }
      expect(events.map(e => e.object.metadata)).not.toContainEqual(
        expect.objectContaining({ managedFields: expect.anything() }),
      );
    } finally {
      reflector.stop();
      await api.close();
    }
  });
});
