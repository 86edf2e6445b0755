/**
 * EventBridge events as AWS documents them (EC2 User Guide: "Spot Instance
 * interruption notices", "EC2 instance rebalance recommendations", "Amazon
 * EventBridge events for Amazon EC2"; AWS Health User Guide: "Monitoring AWS
 * Health events with Amazon EventBridge"), with the documentation's placeholders
 * filled in.
 */

/** An instance of the test cluster. */
export const INSTANCE_ID = 'i-1234567890abcdef0';

export const spotInterruptionWarning = {
  version: '0',
  id: '12345678-1234-1234-1234-123456789012',
  'detail-type': 'EC2 Spot Instance Interruption Warning',
  source: 'aws.ec2',
  account: '123456789012',
  time: '2026-07-20T12:00:00Z',
  region: 'us-east-2',
  resources: [`arn:aws:ec2:us-east-2a:instance/${INSTANCE_ID}`],
  detail: {
    'instance-id': INSTANCE_ID,
    'instance-action': 'terminate',
  },
};

export const rebalanceRecommendation = {
  version: '0',
  id: '12345678-1234-1234-1234-123456789013',
  'detail-type': 'EC2 Instance Rebalance Recommendation',
  source: 'aws.ec2',
  account: '123456789012',
  time: '2026-07-20T11:55:00Z',
  region: 'us-east-2',
  resources: [`arn:aws:ec2:us-east-2:123456789012:instance/${INSTANCE_ID}`],
  detail: {
    'instance-id': INSTANCE_ID,
  },
};

export function stateChange(state: string) {
  return {
    version: '0',
    id: '7bf73129-1428-4cd3-a780-95db273d1602',
    'detail-type': 'EC2 Instance State-change Notification',
    source: 'aws.ec2',
    account: '123456789012',
    time: '2026-07-20T12:02:00Z',
    region: 'us-east-2',
    resources: [`arn:aws:ec2:us-east-2:123456789012:instance/${INSTANCE_ID}`],
    detail: {
      'instance-id': INSTANCE_ID,
      state,
    },
  };
}

export const healthScheduledChange = {
  version: '0',
  id: '7fb65329-1628-4cf3-a740-95fg457h1402',
  'detail-type': 'AWS Health Event',
  source: 'aws.health',
  account: '123456789012',
  time: '2026-07-20T06:27:57Z',
  region: 'us-east-2',
  resources: [INSTANCE_ID],
  detail: {
    eventArn:
      'arn:aws:health:us-east-2::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_12345',
    service: 'EC2',
    eventTypeCode: 'AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED',
    eventTypeCategory: 'scheduledChange',
    startTime: 'Mon, 27 Jul 2026 15:10:09 GMT',
    eventDescription: [
      {
        language: 'en_US',
        latestDescription:
          'EC2 has detected degradation of the underlying hardware hosting your instance.',
      },
    ],
    affectedEntities: [{ entityValue: INSTANCE_ID, tags: { stage: 'prod' } }],
  },
};

export const healthIssue = {
  ...healthScheduledChange,
  id: '7fb65329-1628-4cf3-a740-95fg457h1403',
  detail: {
    ...healthScheduledChange.detail,
    eventTypeCode: 'AWS_EC2_INSTANCE_STORE_DRIVE_PERFORMANCE_DEGRADED',
    eventTypeCategory: 'issue',
  },
};
