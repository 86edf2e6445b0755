import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AgentUnreachableError,
  NodeAgentClient,
  type AgentTimeouts,
} from './NodeAgentClient';

/**
 * The client's waits, shortened: the rules are the same at any scale. The
 * silence is several probes long, so that a busy machine's stall does not pass
 * for a dead agent.
 */
const TIMEOUTS: AgentTimeouts = {
  callMs: 20_000,
  quickCallMs: 200,
  livenessProbeMs: 250,
  silenceMs: 1_500,
  connectMs: 1_000,
};

/** An agent stand-in that answers each path as `answer` says, or never (undefined). */
async function agentAnswering(
  answer: (path: string) => { delayMs: number; body: unknown } | undefined,
) {
  const server = http.createServer((req, res) => {
    const reply = answer(req.url ?? '');
    if (!reply) return; // a node that died after accepting the connection
    setTimeout(
      () =>
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify(reply.body)),
      reply.delayMs,
    );
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    client: new NodeAgentClient(
      `http://127.0.0.1:${port}`,
      't',
      undefined,
      undefined,
      undefined,
      TIMEOUTS,
    ),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>(resolve => server.close(() => resolve()));
    },
  };
}

describe('NodeAgentClient', () => {
  it('ends a quick call to an agent that never answers at its timeout, as unreachable', async () => {
    const agent = await agentAnswering(() => undefined);
    try {
      const started = Date.now();
      const look = agent.client.image('moving');
      await expect(look).rejects.toThrow(AgentUnreachableError);
      await expect(look).rejects.toThrow(
        `no answer within ${TIMEOUTS.quickCallMs} ms`,
      );
      expect(Date.now() - started).toBeLessThan(TIMEOUTS.callMs);
    } finally {
      await agent.close();
    }
  });

  it('ends a long call once the agent has answered no health check for the silence timeout', async () => {
    const agent = await agentAnswering(() => undefined);
    try {
      const started = Date.now();
      await expect(agent.client.wake('sleeping')).rejects.toThrow(
        `no answer to its health checks for ${TIMEOUTS.silenceMs} ms while POST /v1/hibernations/sleeping/wake ran`,
      );
      // Well before the long call's own timeout.
      expect(Date.now() - started).toBeLessThan(TIMEOUTS.callMs / 2);
    } finally {
      await agent.close();
    }
  });

  it('lets a long call run past the silence timeout while the agent answers its health checks', async () => {
    const woken = { id: 'sleeping', phase: 'Running' };
    const agent = await agentAnswering(path =>
      path === '/v1/health'
        ? { delayMs: 0, body: { node: 'spot-a', criu: '4.2.1' } }
        : { delayMs: TIMEOUTS.silenceMs * 2, body: woken },
    );
    try {
      await expect(agent.client.wake('sleeping')).resolves.toEqual(woken);
    } finally {
      await agent.close();
    }
  });
});
