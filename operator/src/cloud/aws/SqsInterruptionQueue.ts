/**
 * Reads the interruption events of a cluster's EC2 instances from the SQS queue
 * that EventBridge rules feed (the queue the AWS Node Termination Handler's
 * queue mode uses), and hands each, as a node's disruption signal, to the
 * operator. A message is deleted once handled, and also when it can never be
 * handled (not an event, or about an instance of no node here), so that no
 * message comes back forever; one whose handling failed returns after the
 * visibility timeout, up to `MAX_RECEIVES` times.
 */
import {
  DeleteMessageCommand,
  Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { DisruptionSignal } from '../../core/migrationPlanner';
import { callAws } from './awsErrors';
import {
  InterruptionEvent,
  instancesOf,
  MalformedEventError,
  parseQueueMessage,
  signalOf,
} from './interruptionEvents';

/** The longest long-poll SQS allows: fewest empty receives, and a message is seen as it arrives. */
export const SQS_WAIT_SECONDS = 20;
/** The most messages SQS returns at once. */
export const SQS_MAX_MESSAGES = 10;
/**
 * How long a received message stays hidden from other readers while it is
 * handled: handling is in memory and takes milliseconds, so this only bounds
 * how late a message whose handling failed is tried again.
 */
export const SQS_VISIBILITY_TIMEOUT_SECONDS = 30;
/** A message received this many times without being handled is dropped: it would loop forever. */
export const MAX_RECEIVES = 5;
/** Back-off after a failed receive, doubling up to the maximum. */
export const RECEIVE_RETRY_MS = { initial: 1_000, max: 30_000 } as const;

/** The IAM actions the queue reader calls, as a policy names them. */
export const SQS_ACTIONS = {
  receive: 'sqs:ReceiveMessage',
  delete: 'sqs:DeleteMessage',
} as const;

/** Where the reader logs. */
export interface InterruptionQueueLog {
  info(message: string): void;
  warn(message: string): void;
}

/** A node's signal from the cloud, or the end of one. */
export type CloudNodeSignal =
  | { kind: 'signal'; signal: DisruptionSignal; event: InterruptionEvent }
  | { kind: 'cleared'; node: string; event: InterruptionEvent };

/** Everything the queue reader is made of. */
export interface SqsInterruptionQueueOptions {
  sqs: SQSClient;
  queueUrl: string;
  /** The Kubernetes node of an EC2 instance, if it is one of this cluster's. */
  nodeForInstance: (instanceId: string) => string | undefined;
  /** Takes a node's signal; a throw leaves the message to come back. */
  onSignal: (signal: CloudNodeSignal) => void | Promise<void>;
  log?: InterruptionQueueLog;
  waitTimeSeconds?: number;
  visibilityTimeoutSeconds?: number;
  /** Waits between failed receives; tests pass a quick one. */
  sleep?: (ms: number) => Promise<void>;
}

/** What one message came to. */
export type MessageOutcome =
  | 'handled'
  | 'ignored'
  | 'malformed'
  | 'not-in-cluster'
  | 'failed'
  | 'dropped';

const silent: InterruptionQueueLog = { info: () => {}, warn: () => {} };

/** The reader of one interruption queue; run it on the leader only, since a read message is gone for the others. */
export class SqsInterruptionQueue {
  private readonly log: InterruptionQueueLog;
  private running?: Promise<void>;
  private abort?: AbortController;
  private stopped = false;
  /** Ends a back-off early when the reader stops. */
  private wake?: () => void;

  constructor(private readonly options: SqsInterruptionQueueOptions) {
    this.log = options.log ?? silent;
  }

  /** Starts reading in the background until `stop()`. */
  start(): void {
    if (this.running) return;
    this.stopped = false;
    this.running = this.loop();
  }

  /** Stops reading: the long-poll under way is abandoned, and its messages come back after the visibility timeout. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.running;
    this.running = undefined;
  }

  /** One receive and the handling of what it brought; returns each message's outcome. */
  async pollOnce(): Promise<MessageOutcome[]> {
    const abort = (this.abort = new AbortController());
    const { Messages } = await callAws(SQS_ACTIONS.receive, () =>
      this.options.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.options.queueUrl,
          MaxNumberOfMessages: SQS_MAX_MESSAGES,
          WaitTimeSeconds: this.options.waitTimeSeconds ?? SQS_WAIT_SECONDS,
          VisibilityTimeout:
            this.options.visibilityTimeoutSeconds ??
            SQS_VISIBILITY_TIMEOUT_SECONDS,
          MessageSystemAttributeNames: [
            'ApproximateReceiveCount',
            'SentTimestamp',
          ],
        }),
        { abortSignal: abort.signal },
      ),
    );
    // Messages are independent (their order within one receive means nothing in
    // SQS), and handled side by side one planning pass can serve them all.
    return Promise.all((Messages ?? []).map(message => this.handle(message)));
  }

  private async loop(): Promise<void> {
    let retryMs: number = RECEIVE_RETRY_MS.initial;
    while (!this.stopped) {
      try {
        await this.pollOnce();
        retryMs = RECEIVE_RETRY_MS.initial;
      } catch (error) {
        if (this.stopped) break;
        this.log.warn(
          `interruption queue ${this.options.queueUrl}: ${
            error instanceof Error ? error.message : error
          }; retrying in ${retryMs} ms`,
        );
        await Promise.race([
          (this.options.sleep ?? defaultSleep)(retryMs),
          new Promise<void>(resolve => (this.wake = resolve)),
        ]);
        retryMs = Math.min(retryMs * 2, RECEIVE_RETRY_MS.max);
      }
    }
  }

  private async handle(message: Message): Promise<MessageOutcome> {
    const id = message.MessageId ?? '(no id)';
    let outcome: MessageOutcome;
    try {
      outcome = await this.withinVisibility(this.act(message, id));
    } catch (error) {
      const receives = Number(message.Attributes?.ApproximateReceiveCount ?? 1);
      if (receives < MAX_RECEIVES) {
        this.log.warn(
          `message ${id} not handled (receive ${receives} of ${MAX_RECEIVES}), it comes back: ${error}`,
        );
        return 'failed';
      }
      this.log.warn(
        `message ${id} not handled after ${receives} receives, dropped: ${error}`,
      );
      outcome = 'dropped';
    }
    await this.delete(message, id);
    return outcome;
  }

  private async act(message: Message, id: string): Promise<MessageOutcome> {
    let parsed;
    try {
      parsed = parseQueueMessage(message.Body);
    } catch (error) {
      if (!(error instanceof MalformedEventError)) throw error;
      this.log.warn(
        `message ${id} dropped, it is no interruption event: ${error.message}`,
      );
      return 'malformed';
    }
    if ('ignored' in parsed) {
      this.log.info(`message ${id} dropped: ${parsed.ignored}`);
      return 'ignored';
    }
    const { event } = parsed;
    let outcome: MessageOutcome = 'not-in-cluster';
    for (const instanceId of instancesOf(event)) {
      const node = this.options.nodeForInstance(instanceId);
      if (!node) continue;
      const signal = signalOf(event, node);
      if (signal === undefined) {
        outcome = 'ignored';
        continue;
      }
      await this.options.onSignal(
        signal === 'cleared'
          ? { kind: 'cleared', node, event }
          : { kind: 'signal', signal, event },
      );
      this.log.info(
        `${event.kind} ${event.eventId} for ${instanceId}: node ${node}`,
      );
      outcome = 'handled';
    }
    if (outcome === 'not-in-cluster') {
      this.log.info(
        `message ${id} dropped: ${event.kind} ${
          event.eventId
        } is for no node of this cluster (${instancesOf(event).join(', ')})`,
      );
    }
    return outcome;
  }

  /**
   * Handling that outlasts the visibility timeout has failed: the message is
   * visible to the next receive already, and the reader must not stall on it.
   */
  private async withinVisibility<T>(handling: Promise<T>): Promise<T> {
    const limitMs =
      (this.options.visibilityTimeoutSeconds ??
        SQS_VISIBILITY_TIMEOUT_SECONDS) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`not handled within ${limitMs} ms`)),
        limitMs,
      );
    });
    try {
      return await Promise.race([handling, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async delete(message: Message, id: string): Promise<void> {
    if (!message.ReceiptHandle) return;
    try {
      await callAws(SQS_ACTIONS.delete, () =>
        this.options.sqs.send(
          new DeleteMessageCommand({
            QueueUrl: this.options.queueUrl,
            ReceiptHandle: message.ReceiptHandle,
          }),
        ),
      );
    } catch (error) {
      // Handling is idempotent (a signal repeats harmlessly), so the message may come back.
      this.log.warn(
        `message ${id} handled but not deleted: ${
          error instanceof Error ? error.message : error
        }`,
      );
    }
  }
}

function defaultSleep(ms: number): Promise<void> {
  // A back-off must not keep a stopping process alive.
  return new Promise(resolve => setTimeout(resolve, ms).unref());
}
