import {
  healthIssue,
  healthScheduledChange,
  INSTANCE_ID,
  rebalanceRecommendation,
  spotInterruptionWarning,
  stateChange,
} from './__fixtures__/eventBridgeEvents';
import {
  instanceIdOfProviderId,
  MalformedEventError,
  parseQueueMessage,
  signalOf,
} from './interruptionEvents';

const NODE = 'ip-10-0-1-23.us-east-2.compute.internal';

function eventOf(body: unknown) {
  const parsed = parseQueueMessage(JSON.stringify(body));
  if (!('event' in parsed)) throw new Error(`ignored: ${parsed.ignored}`);
  return parsed.event;
}

describe('EventBridge interruption events', () => {
  it('reads a spot interruption warning as a notice due two minutes after the event', () => {
    const event = eventOf(spotInterruptionWarning);
    expect(event).toEqual({
      kind: 'interruption-notice',
      eventId: spotInterruptionWarning.id,
      instanceId: INSTANCE_ID,
      at: Date.parse('2026-07-20T12:00:00Z'),
      terminatesAt: Date.parse('2026-07-20T12:02:00Z'),
      action: 'terminate',
    });
    expect(signalOf(event, NODE)).toEqual({
      node: NODE,
      reason: 'notice',
      deadline: Date.parse('2026-07-20T12:02:00Z'),
    });
  });

  it('reads a rebalance recommendation as a rebalance with no deadline', () => {
    const event = eventOf(rebalanceRecommendation);
    expect(event).toMatchObject({
      kind: 'rebalance-recommendation',
      instanceId: INSTANCE_ID,
    });
    expect(signalOf(event, NODE)).toEqual({
      node: NODE,
      reason: 'recommendation',
    });
  });

  it.each(['stopping', 'stopped', 'shutting-down', 'terminated'])(
    'reads state %s as a node going now',
    state => {
      const event = eventOf(stateChange(state));
      expect(signalOf(event, NODE)).toEqual({
        node: NODE,
        reason: 'notice',
        deadline: Date.parse('2026-07-20T12:02:00Z'),
      });
    },
  );

  it('reads an instance running again as the end of its signal', () => {
    expect(signalOf(eventOf(stateChange('running')), NODE)).toBe('cleared');
  });

  it('reads an AWS Health scheduled change as a drain now, due when the change starts', () => {
    const event = eventOf(healthScheduledChange);
    expect(event).toEqual({
      kind: 'scheduled-change',
      eventId: healthScheduledChange.id,
      instanceIds: [INSTANCE_ID],
      at: Date.parse('2026-07-20T06:27:57Z'),
      eventTypeCode: 'AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED',
      startsAt: Date.parse('2026-07-27T15:10:09Z'),
    });
    expect(signalOf(event, NODE)).toEqual({
      node: NODE,
      reason: 'drain',
      deadline: Date.parse('2026-07-27T15:10:09Z'),
    });
  });

  it('lets go of health events that are not EC2 scheduled changes, and of other detail types', () => {
    expect(parseQueueMessage(JSON.stringify(healthIssue))).toEqual({
      ignored: expect.stringMatching(/EC2 issue, not an EC2 scheduled change/),
    });
    expect(
      parseQueueMessage(
        JSON.stringify({
          ...rebalanceRecommendation,
          'detail-type': 'EC2 Instance Launch Successful',
        }),
      ),
    ).toEqual({ ignored: expect.stringMatching(/not one Ferry acts on/) });
  });

  it('unwraps an event that came through an SNS topic', () => {
    const viaSns = {
      Type: 'Notification',
      MessageId: 'sns-1',
      Message: JSON.stringify(spotInterruptionWarning),
    };
    expect(eventOf(viaSns)).toMatchObject({
      kind: 'interruption-notice',
      instanceId: INSTANCE_ID,
    });
  });

  it.each([
    ['no body', undefined, /no body/],
    ['not JSON', '{"detail-type": ', /not JSON/],
    ['an array', '[1, 2]', /not a JSON object/],
    [
      'no detail-type',
      JSON.stringify({ id: 'x', time: '2026-07-20T12:00:00Z', detail: {} }),
      /no "detail-type"/,
    ],
    [
      'a time that is none',
      JSON.stringify({ ...spotInterruptionWarning, time: 'soon' }),
      /"soon", which is not a time/,
    ],
    [
      'no instance id',
      JSON.stringify({
        ...spotInterruptionWarning,
        detail: { 'instance-action': 'stop' },
      }),
      /no "instance-id"/,
    ],
    [
      'no detail',
      JSON.stringify({ ...rebalanceRecommendation, detail: undefined }),
      /no "detail"/,
    ],
  ])('refuses a message with %s', (_what, body, message) => {
    expect(() => parseQueueMessage(body)).toThrow(MalformedEventError);
    expect(() => parseQueueMessage(body)).toThrow(message);
  });

  it('finds the instance id in a node provider id', () => {
    expect(
      instanceIdOfProviderId('aws:///us-east-1a/i-0123456789abcdef0'),
    ).toBe('i-0123456789abcdef0');
    expect(
      instanceIdOfProviderId('aws:///us-east-1a/fargate-ip-10-0-0-1'),
    ).toBeUndefined();
    expect(
      instanceIdOfProviderId('gce://project/us-central1-a/vm-1'),
    ).toBeUndefined();
    expect(instanceIdOfProviderId(undefined)).toBeUndefined();
  });
});
