import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeletCheckpointClient, KubeletCheckpointError } from './KubeletCheckpointClient';

/** An API server stand-in on loopback that records what it was asked. */
async function fakeApiServer(answer: (req: http.IncomingMessage) => { status: number; body: string }) {
  const seen: { method?: string; url?: string; auth?: string }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, auth: req.headers.authorization });
    const { status, body } = answer(req);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise(resolve => server.close(resolve)) };
}

const ref = { node: 'ip-10-0-3-17.eu-west-1.compute.internal', namespace: 'shop', pod: 'cache-0', container: 'valkey' };

describe('KubeletCheckpointClient', () => {
  it('posts to the node proxy checkpoint route with the timeout and returns the archive paths', async () => {
    const archive = '/var/lib/kubelet/checkpoints/checkpoint-cache-0_shop-valkey-2026-05-28T14:03:00Z.tar';
    const api = await fakeApiServer(() => ({ status: 200, body: JSON.stringify({ items: [archive] }) }));
    try {
      const client = new KubeletCheckpointClient({ server: api.url, token: 'sa-token' });
      expect(await client.checkpoint(ref, 30)).toEqual([archive]);
      expect(api.seen).toEqual([
        {
          method: 'POST',
          url: '/api/v1/nodes/ip-10-0-3-17.eu-west-1.compute.internal/proxy/checkpoint/shop/cache-0/valkey?timeout=30',
          auth: 'Bearer sa-token',
        },
      ]);
    } finally {
      await api.close();
    }
  });

  it.each([
    [403, /nodes\/proxy/],
    [404, /ContainerCheckpoint feature gate/],
    [500, /runtime failed to checkpoint/],
  ])('explains an HTTP %d in words an operator can act on', async (status, message) => {
    const api = await fakeApiServer(() => ({ status, body: 'nope' }));
    try {
      const client = new KubeletCheckpointClient({ server: api.url });
      const error = await client.checkpoint(ref).catch(e => e);
      expect(error).toBeInstanceOf(KubeletCheckpointError);
      expect(error.status).toBe(status);
      expect(error.message).toMatch(message);
    } finally {
      await api.close();
    }
  });

  it('rejects an answer that is not a list of paths', async () => {
    const api = await fakeApiServer(() => ({ status: 200, body: JSON.stringify({ items: [42] }) }));
    try {
      await expect(new KubeletCheckpointClient({ server: api.url }).checkpoint(ref)).rejects.toThrow(/unexpected kubelet answer/);
    } finally {
      await api.close();
    }
  });

  it('escapes names so that a pod name cannot change the route', async () => {
    const api = await fakeApiServer(() => ({ status: 200, body: '{"items":[]}' }));
    try {
      await new KubeletCheckpointClient({ server: api.url }).checkpoint({ ...ref, pod: '../../x' });
      expect(api.seen[0].url).toContain('/checkpoint/shop/..%2F..%2Fx/valkey');
    } finally {
      await api.close();
    }
  });
});
