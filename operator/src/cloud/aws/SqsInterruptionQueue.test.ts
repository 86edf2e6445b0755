import {
  DeleteMessageCommand,
  Message,
  ReceiveMessageCommand,
  SQSClient,
  SQSServiceException,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { AwsPermissionError } from './awsErrors';
import {
  healthScheduledChange,
  INSTANCE_ID,
  rebalanceRecommendation,
  spotInterruptionWarning,
  stateChange,
} from './__fixtures__/eventBridgeEvents';
import {
  CloudNodeSignal,
  MAX_RECEIVES,
  SQS_MAX_MESSAGES,
  SQS_VISIBILITY_TIMEOUT_SECONDS,
  SQS_WAIT_SECONDS,
  SqsInterruptionQueue,
} from './SqsInterruptionQueue';

const sqsMock = mockClient(SQSClient);
const QUEUE_URL =
  'https://sqs.us-east-2.amazonaws.com/123456789012/ferry-interruptions';
const NODE = 'ip-10-0-1-23.us-east-2.compute.internal';

let serial = 0;
function message(body: unknown, receives = 1): Message {
  serial += 1;
  return {
    MessageId: `m-${serial}`,
    ReceiptHandle: `receipt-${serial}`,
    Body: typeof body === 'string' ? body : JSON.stringify(body),
    Attributes: { ApproximateReceiveCount: String(receives) },
  };
}

function queue(
  onSignal: (signal: CloudNodeSignal) => void | Promise<void> = () => {},
) {
  const logged: string[] = [];
  const reader = new SqsInterruptionQueue({
    sqs: new SQSClient({ region: 'us-east-2' }),
    queueUrl: QUEUE_URL,
    nodeForInstance: id => (id === INSTANCE_ID ? NODE : undefined),
    onSignal,
    log: {
      info: m => logged.push(`info: ${m}`),
      warn: m => logged.push(`warn: ${m}`),
    },
    sleep: async () => {},
  });
  return { reader, logged };
}

function deleted(): string[] {
  return sqsMock
    .commandCalls(DeleteMessageCommand)
    .map(c => c.args[0].input.ReceiptHandle!);
}

beforeEach(() => sqsMock.reset());

describe('SqsInterruptionQueue', () => {
  it("long-polls with a visibility timeout and hands a spot warning to the operator as its node's notice", async () => {
    const warning = message(spotInterruptionWarning);
    sqsMock.on(ReceiveMessageCommand).resolves({ Messages: [warning] });
    sqsMock.on(DeleteMessageCommand).resolves({});
    const signals: CloudNodeSignal[] = [];
    const { reader } = queue(s => void signals.push(s));

    expect(await reader.pollOnce()).toEqual(['handled']);

    expect(
      sqsMock.commandCalls(ReceiveMessageCommand)[0].args[0].input,
    ).toEqual({
      QueueUrl: QUEUE_URL,
      MaxNumberOfMessages: SQS_MAX_MESSAGES,
      WaitTimeSeconds: SQS_WAIT_SECONDS,
      VisibilityTimeout: SQS_VISIBILITY_TIMEOUT_SECONDS,
      MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
    });
    expect(signals).toEqual([
      {
        kind: 'signal',
        signal: {
          node: NODE,
          reason: 'notice',
          deadline: Date.parse('2026-07-20T12:02:00Z'),
        },
        event: expect.objectContaining({
          kind: 'interruption-notice',
          instanceId: INSTANCE_ID,
        }),
      },
    ]);
    expect(sqsMock.commandCalls(DeleteMessageCommand)[0].args[0].input).toEqual(
      {
        QueueUrl: QUEUE_URL,
        ReceiptHandle: warning.ReceiptHandle,
      },
    );
  });

  it('hands on rebalances, scheduled changes and state changes, and deletes each', async () => {
    const batch = [
      message(rebalanceRecommendation),
      message(healthScheduledChange),
      message(stateChange('terminated')),
      message(stateChange('running')),
    ];
    sqsMock.on(ReceiveMessageCommand).resolves({ Messages: batch });
    sqsMock.on(DeleteMessageCommand).resolves({});
    const signals: CloudNodeSignal[] = [];
    const { reader } = queue(s => void signals.push(s));

    expect(await reader.pollOnce()).toEqual([
      'handled',
      'handled',
      'handled',
      'handled',
    ]);
    expect(
      signals.map(s => (s.kind === 'signal' ? s.signal.reason : s.kind)),
    ).toEqual(['recommendation', 'drain', 'notice', 'cleared']);
    expect(deleted()).toEqual(batch.map(m => m.ReceiptHandle));
  });

  it('logs and deletes malformed messages and events for other clusters, and carries on', async () => {
    const batch = [
      message('not json at all'),
      message({ ...spotInterruptionWarning, detail: {} }),
      message({
        ...spotInterruptionWarning,
        detail: { 'instance-id': 'i-0fffffffffffffff0' },
      }),
      message(spotInterruptionWarning),
    ];
    sqsMock.on(ReceiveMessageCommand).resolves({ Messages: batch });
    sqsMock.on(DeleteMessageCommand).resolves({});
    const signals: CloudNodeSignal[] = [];
    const { reader, logged } = queue(s => void signals.push(s));

    expect(await reader.pollOnce()).toEqual([
      'malformed',
      'malformed',
      'not-in-cluster',
      'handled',
    ]);
    expect(deleted()).toEqual(batch.map(m => m.ReceiptHandle));
    expect(signals).toHaveLength(1);
    expect(logged).toContainEqual(
      expect.stringMatching(
        /^warn: message m-\d+ dropped, it is no interruption event: the message is not JSON/,
      ),
    );
    expect(logged).toContainEqual(
      expect.stringMatching(
        /for no node of this cluster \(i-0fffffffffffffff0\)/,
      ),
    );
  });

  it('leaves a message whose handling failed to come back, and drops it after the last receive', async () => {
    const early = message(spotInterruptionWarning, 1);
    const last = message(spotInterruptionWarning, MAX_RECEIVES);
    sqsMock
      .on(ReceiveMessageCommand)
      .resolvesOnce({ Messages: [early] })
      .resolvesOnce({ Messages: [last] });
    sqsMock.on(DeleteMessageCommand).resolves({});
    const { reader, logged } = queue(() => {
      throw new Error('planner unavailable');
    });

    expect(await reader.pollOnce()).toEqual(['failed']);
    expect(deleted()).toEqual([]);
    expect(await reader.pollOnce()).toEqual(['dropped']);
    expect(deleted()).toEqual([last.ReceiptHandle]);
    expect(logged).toContainEqual(
      expect.stringMatching(
        /not handled after 5 receives, dropped: Error: planner unavailable/,
      ),
    );
  });

  it('keeps reading after a failed receive, explains a missing permission, and stops promptly', async () => {
    const denied = new SQSServiceException({
      name: 'AccessDenied',
      $fault: 'client',
      $metadata: { httpStatusCode: 403 },
      message: 'Access to the resource is denied.',
    });
    const signals: CloudNodeSignal[] = [];
    const { reader, logged } = queue(s => void signals.push(s));
    let receives = 0;
    sqsMock.on(ReceiveMessageCommand).callsFake(async () => {
      receives += 1;
      if (receives === 1) throw denied;
      if (receives === 2)
        return { Messages: [message(spotInterruptionWarning)] };
      // An empty long-poll, as SQS answers when nothing arrives.
      await new Promise(resolve => setTimeout(resolve, 5));
      return {};
    });
    sqsMock.on(DeleteMessageCommand).resolves({});

    reader.start();
    const deadline = Date.now() + 5_000;
    while (signals.length === 0 && Date.now() < deadline)
      await new Promise(resolve => setTimeout(resolve, 5));
    await reader.stop();

    expect(signals).toHaveLength(1);
    expect(logged[0]).toMatch(
      /^warn: interruption queue .*: AWS refused sqs:ReceiveMessage: .*needs "sqs:ReceiveMessage" allowed/,
    );
    const after = receives;
    await new Promise(resolve => setTimeout(resolve, 30));
    expect(receives).toBe(after);
  });

  it('reports a refused receive from pollOnce as a permission error', async () => {
    sqsMock.on(ReceiveMessageCommand).rejects(
      new SQSServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: {},
        message: 'denied',
      }),
    );
    await expect(queue().reader.pollOnce()).rejects.toBeInstanceOf(
      AwsPermissionError,
    );
  });

  it('gives up on handling that outlasts the visibility timeout, leaving the message to come back', async () => {
    sqsMock
      .on(ReceiveMessageCommand)
      .resolves({ Messages: [message(spotInterruptionWarning)] });
    sqsMock.on(DeleteMessageCommand).resolves({});
    const logged: string[] = [];
    const reader = new SqsInterruptionQueue({
      sqs: new SQSClient({ region: 'us-east-2' }),
      queueUrl: QUEUE_URL,
      nodeForInstance: () => NODE,
      // A planner that never answers.
      onSignal: () => new Promise<void>(() => {}),
      visibilityTimeoutSeconds: 0.05,
      log: { info: () => {}, warn: m => logged.push(m) },
    });
    expect(await reader.pollOnce()).toEqual(['failed']);
    expect(deleted()).toEqual([]);
    expect(logged).toContainEqual(
      expect.stringMatching(/not handled within 50 ms/),
    );
  });

  it('still counts a message as handled when its delete fails', async () => {
    sqsMock
      .on(ReceiveMessageCommand)
      .resolves({ Messages: [message(rebalanceRecommendation)] });
    sqsMock.on(DeleteMessageCommand).rejects(new Error('socket hang up'));
    const { reader, logged } = queue();
    expect(await reader.pollOnce()).toEqual(['handled']);
    expect(logged).toContainEqual(
      expect.stringMatching(/handled but not deleted: socket hang up/),
    );
  });
});
