import {
  hibernationRefusal,
  parseHibernateAfter,
  sleepingRequests,
} from './hibernationPolicy';

describe('parseHibernateAfter', () => {
  it('reads seconds, minutes and hours', () => {
    expect(parseHibernateAfter('10s')).toBe(10_000);
    expect(parseHibernateAfter('10m')).toBe(600_000);
    expect(parseHibernateAfter(' 2h ')).toBe(7_200_000);
  });

  it.each(['', '10', '10 s', '1.5m', '10ms', '-10s', 'ten minutes', '10min'])(
    "refuses '%s', saying what it takes",
    value => {
      expect(() => parseHibernateAfter(value)).toThrow(
        /give a whole number of seconds, minutes or hours, such as 10s, 10m or 2h/,
      );
    },
  );

  it('refuses periods too short to be idle, or too long to mean anything but never', () => {
    expect(() => parseHibernateAfter('1s')).toThrow(/between 5s and 168h/);
    expect(() => parseHibernateAfter('200h')).toThrow(/between 5s and 168h/);
    expect(parseHibernateAfter('5s')).toBe(5_000);
  });
});

describe('hibernationRefusal', () => {
  const lone = {
    workloadKind: 'Deployment',
    replicas: 1,
    ferryRuntime: true,
    ports: [6379],
  };

  it('lets a lone member with the ferry runtime and a port sleep', () => {
    expect(hibernationRefusal(lone)).toBeUndefined();
  });

  it('refuses a member of a replicated workload, naming its quorum', () => {
    expect(
      hibernationRefusal({ ...lone, workloadKind: 'StatefulSet', replicas: 3 }),
    ).toBe(
      'StatefulSet has 3 replicas, whose quorum of 2 needs every member awake to vote and replicate; hibernation is for a lone member',
    );
  });

  it('refuses a pod nothing could restore or wake', () => {
    expect(hibernationRefusal({ ...lone, ferryRuntime: false })).toMatch(
      /runtimeClassName 'ferry'/,
    );
    expect(hibernationRefusal({ ...lone, ports: [] })).toMatch(
      /declare no TCP port/,
    );
  });
});

describe('sleepingRequests', () => {
  it('drops cpu to zero when the container has limits (the pod stays Burstable), memory to 1Mi', () => {
    expect(
      sleepingRequests(
        { cpu: '250m', memory: '128Mi' },
        { cpu: '500m', memory: '256Mi' },
      ),
    ).toEqual({ cpu: '0', memory: '1Mi' });
  });

  it('keeps the least quantity when there are no limits, which zero would turn BestEffort', () => {
    expect(sleepingRequests({ cpu: '250m', memory: '128Mi' }, {})).toEqual({
      cpu: '1m',
      memory: '1Mi',
    });
  });
});
