/**
 * The EventBridge events that tell a cluster its EC2 instances are going, as
 * they arrive in an SQS queue (directly from an EventBridge rule, or through an
 * SNS topic), read into Ferry's terms: an instance, what is happening to it and
 * when. These are the events the AWS Node Termination Handler's queue mode
 * reads, so one queue and one set of rules serves either.
 */
import type { DisruptionSignal } from '../../core/migrationPlanner';
import { TERMINATION_NOTICE_MS } from '../CloudProvider';

/** EventBridge `detail-type`s Ferry acts on. */
export const EVENT_DETAIL_TYPES = {
  spotInterruption: 'EC2 Spot Instance Interruption Warning',
  rebalance: 'EC2 Instance Rebalance Recommendation',
  stateChange: 'EC2 Instance State-change Notification',
  health: 'AWS Health Event',
} as const;

/** Instance states in which the instance, and so its node, is going or gone. */
const LEAVING_STATES = new Set([
  'shutting-down',
  'terminated',
  'stopping',
  'stopped',
]);
/** States in which the instance runs (again): any signal it had is over. */
const RUNNING_STATES = new Set(['pending', 'running']);

/** EC2 will stop, terminate or hibernate a spot instance, two minutes after `at`. */
export interface InterruptionNotice {
  kind: 'interruption-notice';
  eventId: string;
  instanceId: string;
  /** When EC2 sent the warning. */
  at: number;
  /** When the instance goes: the warning's time plus AWS's two-minute notice. */
  terminatesAt: number;
  action: string;
}

/** EC2 sees an elevated risk of interruption for a spot instance. */
export interface RebalanceRecommendation {
  kind: 'rebalance-recommendation';
  eventId: string;
  instanceId: string;
  at: number;
}

/** An instance changed state. */
export interface InstanceStateChange {
  kind: 'state-change';
  eventId: string;
  instanceId: string;
  at: number;
  state: string;
}

/** AWS Health scheduled a change (retirement, maintenance, reboot) for instances. */
export interface ScheduledChange {
  kind: 'scheduled-change';
  eventId: string;
  instanceIds: string[];
  at: number;
  eventTypeCode: string;
  /** When the change begins, if the event says. */
  startsAt?: number;
}

/** One event Ferry understands. */
export type InterruptionEvent =
  | InterruptionNotice
  | RebalanceRecommendation
  | InstanceStateChange
  | ScheduledChange;

/** A message that is not an event at all, or an event missing what its type must carry. */
export class MalformedEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedEventError';
  }
}

/** What a queue message holds: an event to act on, or one to let go of and why. */
export type ParsedMessage = { event: InterruptionEvent } | { ignored: string };

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireString(object: Json, key: string, where: string): string {
  const value = object[key];
  if (typeof value !== 'string' || value === '') {
    throw new MalformedEventError(`${where} has no "${key}"`);
  }
  return value;
}

function requireTime(object: Json, key: string, where: string): number {
  const text = requireString(object, key, where);
  const at = Date.parse(text);
  if (Number.isNaN(at))
    throw new MalformedEventError(
      `${where} has "${key}" ${JSON.stringify(text)}, which is not a time`,
    );
  return at;
}

/**
 * Reads one SQS message body. Throws `MalformedEventError` for a body that is not
 * an EventBridge event (or one missing the fields its type must carry); returns
 * `ignored` for a well-formed event Ferry has nothing to do with.
 */
export function parseQueueMessage(body: string | undefined): ParsedMessage {
  if (!body) throw new MalformedEventError('the message has no body');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new MalformedEventError(
      `the message is not JSON: ${(error as Error).message}`,
    );
  }
  if (!isObject(parsed))
    throw new MalformedEventError('the message is not a JSON object');
  // An EventBridge rule may target an SNS topic that the queue subscribes to.
  if (parsed.Type === 'Notification' && typeof parsed.Message === 'string') {
    return parseQueueMessage(parsed.Message);
  }
  return parseEvent(parsed);
}

/** Reads one EventBridge event. */
export function parseEvent(event: Json): ParsedMessage {
  const detailType = requireString(event, 'detail-type', 'the event');
  const eventId = requireString(event, 'id', `the "${detailType}" event`);
  const where = `the "${detailType}" event ${eventId}`;
  const at = requireTime(event, 'time', where);
  const detail = event.detail;
  if (!isObject(detail))
    throw new MalformedEventError(`${where} has no "detail"`);
  switch (detailType) {
    case EVENT_DETAIL_TYPES.spotInterruption:
      return {
        event: {
          kind: 'interruption-notice',
          eventId,
          instanceId: requireString(detail, 'instance-id', where),
          at,
          terminatesAt: at + TERMINATION_NOTICE_MS.aws,
          action:
            typeof detail['instance-action'] === 'string'
              ? detail['instance-action']
              : 'terminate',
        },
      };
    case EVENT_DETAIL_TYPES.rebalance:
      return {
        event: {
          kind: 'rebalance-recommendation',
          eventId,
          instanceId: requireString(detail, 'instance-id', where),
          at,
        },
      };
    case EVENT_DETAIL_TYPES.stateChange:
      return {
        event: {
          kind: 'state-change',
          eventId,
          instanceId: requireString(detail, 'instance-id', where),
          at,
          state: requireString(detail, 'state', where),
        },
      };
    case EVENT_DETAIL_TYPES.health: {
      const service = requireString(detail, 'service', where);
      const category = requireString(detail, 'eventTypeCategory', where);
      if (service !== 'EC2' || category !== 'scheduledChange') {
        return {
          ignored: `${where} is a ${service} ${category}, not an EC2 scheduled change`,
        };
      }
      const entities = detail.affectedEntities;
      if (!Array.isArray(entities))
        throw new MalformedEventError(`${where} has no "affectedEntities"`);
      const instanceIds = entities
        .map(entity => (isObject(entity) ? entity.entityValue : undefined))
        .filter(
          (value): value is string =>
            typeof value === 'string' && value.startsWith('i-'),
        );
      if (instanceIds.length === 0)
        return { ignored: `${where} affects no EC2 instance` };
      const startsAt =
        typeof detail.startTime === 'string'
          ? Date.parse(detail.startTime)
          : NaN;
      return {
        event: {
          kind: 'scheduled-change',
          eventId,
          instanceIds,
          at,
          eventTypeCode:
            typeof detail.eventTypeCode === 'string'
              ? detail.eventTypeCode
              : 'unknown',
          startsAt: Number.isNaN(startsAt) ? undefined : startsAt,
        },
      };
    }
    default:
      return { ignored: `${where} is not one Ferry acts on` };
  }
}

/** The instances an event is about. */
export function instancesOf(event: InterruptionEvent): string[] {
  return event.kind === 'scheduled-change'
    ? event.instanceIds
    : [event.instanceId];
}

/**
 * What an event means for a node, in the terms the NTH taints have: a notice
 * with a deadline, a rebalance, a drain (AWS Health's scheduled changes drain at
 * once, as NTH does, since degraded hardware may not wait for the window);
 * `cleared` when the instance runs again; undefined when it changes nothing.
 */
export function signalOf(
  event: InterruptionEvent,
  node: string,
): DisruptionSignal | 'cleared' | undefined {
  switch (event.kind) {
    case 'interruption-notice':
      return { node, reason: 'notice', deadline: event.terminatesAt };
    case 'rebalance-recommendation':
      return { node, reason: 'recommendation' };
    case 'scheduled-change':
      return { node, reason: 'drain', deadline: event.startsAt };
    case 'state-change':
      // Going now: whatever can still be saved must move before it is gone.
      if (LEAVING_STATES.has(event.state))
        return { node, reason: 'notice', deadline: event.at };
      if (RUNNING_STATES.has(event.state)) return 'cleared';
      return undefined;
    default:
      return undefined;
  }
}

/** The EC2 instance id in a node's `spec.providerID` (`aws:///us-east-1a/i-0123456789abcdef0`). */
export function instanceIdOfProviderId(
  providerId: string | undefined,
): string | undefined {
  if (!providerId?.startsWith('aws://')) return undefined;
  const last = providerId.slice(providerId.lastIndexOf('/') + 1);
  return /^i-[0-9a-f]+$/.test(last) ? last : undefined;
}
