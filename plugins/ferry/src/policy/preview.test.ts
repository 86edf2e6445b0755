import { entityStatus } from '../__testUtils__/fixtures';
import { permanentReplicaCount, previewPolicy } from './preview';

describe('permanentReplicaCount', () => {
  it('rounds the ratio up and keeps one permanent replica for a quorum', () => {
    expect(
      permanentReplicaCount(3, { enabled: true, permanentRatio: 0.3 }, 2),
    ).toBe(1);
    expect(
      permanentReplicaCount(5, { enabled: true, permanentRatio: 0.5 }, 3),
    ).toBe(3);
    expect(
      permanentReplicaCount(3, { enabled: true, permanentRatio: 0 }, 2),
    ).toBe(1);
    expect(
      permanentReplicaCount(3, { enabled: true, permanentRatio: 0 }, 0),
    ).toBe(0);
    expect(
      permanentReplicaCount(10, { enabled: true, permanentRatio: 0.3 }, 0),
    ).toBe(3);
    expect(
      permanentReplicaCount(3, { enabled: false, permanentRatio: 0.3 }, 2),
    ).toBe(3);
  });
});

describe('previewPolicy', () => {
  it('prices spot replicas from the ones running now', () => {
    const preview = previewPolicy(entityStatus, {
      ...entityStatus.policy,
      permanentRatio: 0.67,
    });
    expect(preview.permanentReplicas).toBe(3);
    expect(preview.spotReplicas).toBe(0);
    expect(preview.hourlyCostUsd).toBeCloseTo(0.321);
    expect(preview.monthlySavingsUsd).toBeCloseTo(0);
    expect(preview.interruptionChance).toBe(0);
    expect(preview.estimated).toBe(false);
  });

  it('says when it assumes prices because nothing runs on spot yet', () => {
    const onDemandOnly = {
      ...entityStatus,
      replicas: entityStatus.replicas.map(r => ({
        ...r,
        capacityType: 'on-demand' as const,
      })),
    };
    const preview = previewPolicy(onDemandOnly, {
      ...entityStatus.policy,
      permanentRatio: 0.3,
    });
    expect(preview.spotReplicas).toBe(2);
    expect(preview.estimated).toBe(true);
    expect(preview.hourlyCostUsd).toBeCloseTo(0.107 + 2 * 0.107 * 0.4);
    expect(preview.quorumOnPermanent).toBe(false);
  });
});
