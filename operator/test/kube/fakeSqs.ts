/**
 * A one-queue SQS on 127.0.0.1 speaking the AWS JSON 1.0 protocol that
 * `@aws-sdk/client-sqs` uses (`X-Amz-Target: AmazonSQS.ReceiveMessage`,
 * `AmazonSQS.DeleteMessage`): messages are held until deleted, hidden for the
 * receive's visibility timeout, and a receive with nothing to give waits up to
 * its `WaitTimeSeconds`, as SQS's long-poll does.
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

interface QueuedMessage {
  id: string;
  body: string;
  receives: number;
  receiptHandle?: string;
  visibleAt: number;
}

/** A request the fake queue answered, for tests to check what the reader asked. */
export interface SqsCall {
  action: string;
  input: Record<string, unknown>;
}

export class FakeSqsQueue {
  readonly calls: SqsCall[] = [];
  readonly deleted: string[] = [];
  private readonly messages: QueuedMessage[] = [];
  /** Runs before a delete is answered, to look at the world as the reader deletes. */
  beforeDelete?: (messageId: string) => Promise<void>;
  private readonly waiting = new Set<() => void>();
  private server?: http.Server;
  port = 0;

  /** Listens on an ephemeral loopback port. */
  async start(): Promise<void> {
    this.server = http.createServer((req, res) => this.serve(req, res));
    await new Promise<void>(resolve =>
      this.server!.listen(0, '127.0.0.1', resolve),
    );
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const wake of this.waiting) wake();
    this.server?.closeAllConnections();
    await new Promise<void>(resolve =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get queueUrl(): string {
    return `${this.endpoint}/123456789012/ferry-interruptions`;
  }

  /** Puts a message on the queue; returns its id. */
  send(body: string): string {
    const id = randomUUID();
    this.messages.push({ id, body, receives: 0, visibleAt: 0 });
    for (const wake of this.waiting) wake();
    return id;
  }

  /** Messages not yet deleted. */
  get depth(): number {
    return this.messages.length;
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', chunk => chunks.push(chunk));
    req.on('end', async () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const action = target.replace(/^AmazonSQS\./, '');
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      this.calls.push({ action, input });
      let status = 200;
      let body: unknown;
      if (action === 'ReceiveMessage') {
        body = await this.receive(input, req);
      } else if (action === 'DeleteMessage') {
        const held = this.messages.find(
          m => m.receiptHandle === input.ReceiptHandle,
        );
        if (held) await this.beforeDelete?.(held.id);
        const index = this.messages.findIndex(
          m => m.receiptHandle === input.ReceiptHandle,
        );
        if (index >= 0) {
          this.deleted.push(this.messages[index].id);
          this.messages.splice(index, 1);
        }
        body = {};
      } else {
        status = 400;
        body = {
          __type: 'com.amazonaws.sqs#InvalidAction',
          message: `the fake queue does not do ${target}`,
        };
      }
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(JSON.stringify(body));
    });
  }

  private async receive(input: Record<string, any>, req: http.IncomingMessage) {
    const deadline = Date.now() + Number(input.WaitTimeSeconds ?? 0) * 1000;
    for (;;) {
      const now = Date.now();
      const visible = this.messages
        .filter(m => m.visibleAt <= now)
        .slice(0, Number(input.MaxNumberOfMessages ?? 1));
      if (visible.length > 0) {
        return {
          Messages: visible.map(m => {
            m.receives += 1;
            m.receiptHandle = randomUUID();
            m.visibleAt = now + Number(input.VisibilityTimeout ?? 30) * 1000;
            return {
              MessageId: m.id,
              ReceiptHandle: m.receiptHandle,
              MD5OfBody: createHash('md5').update(m.body).digest('hex'),
              Body: m.body,
              Attributes: { ApproximateReceiveCount: String(m.receives) },
            };
          }),
        };
      }
      if (now >= deadline || req.socket.destroyed) return {};
      await new Promise<void>(resolve => {
        let timer: NodeJS.Timeout | undefined = undefined;
        const wake = () => {
          this.waiting.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        // Wakes for a new message, or looks again shortly (a hidden one may be visible again).
        timer = setTimeout(wake, Math.min(deadline - now, 250));
        this.waiting.add(wake);
      });
    }
  }
}
