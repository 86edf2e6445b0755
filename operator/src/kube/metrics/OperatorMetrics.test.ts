import { MetricsServer, OperatorMetrics } from './OperatorMetrics';

describe('OperatorMetrics', () => {
  it('counts moves by reason, driver and outcome, with their write pause', async () => {
    const metrics = new OperatorMetrics({ processMetrics: false });
    metrics.migrationFinished({
      reason: 'notice',
      driver: 'valkey',
      phase: 'Succeeded',
      writePauseMs: 4,
    });
    metrics.migrationFinished({
      reason: 'notice',
      driver: 'valkey',
      phase: 'Succeeded',
      writePauseMs: 30,
    });
    metrics.migrationFinished({
      reason: 'drain',
      driver: 'reschedule',
      phase: 'Failed',
    });
    const text = await metrics.registry.metrics();
    expect(text).toContain(
      'ferry_migrations_total{reason="notice",driver="valkey",outcome="Succeeded"} 2',
    );
    expect(text).toContain(
      'ferry_migrations_total{reason="drain",driver="reschedule",outcome="Failed"} 1',
    );
    expect(text).toContain(
      'ferry_migration_write_pause_seconds_bucket{le="0.005",driver="valkey"} 1',
    );
    expect(text).toContain(
      'ferry_migration_write_pause_seconds_count{driver="valkey"} 2',
    );
  });

  it("shows each spot pool's interruption risk", async () => {
    const metrics = new OperatorMetrics({ processMetrics: false });
    metrics.poolRisks([
      { pool: { instanceType: 'm5.large', zone: 'us-east-1a' }, risk: 0.26 },
      { pool: { instanceType: 'r5.large', zone: 'us-east-1a' }, risk: 0.008 },
    ]);
    const text = await metrics.registry.metrics();
    expect(text).toContain(
      'ferry_pool_interruption_risk{instance_type="m5.large",zone="us-east-1a"} 0.26',
    );
    expect(text).toContain(
      'ferry_pool_interruption_risk{instance_type="r5.large",zone="us-east-1a"} 0.008',
    );
  });

  it('keeps a workload series until the workload is gone', async () => {
    const metrics = new OperatorMetrics({ processMetrics: false });
    const workload = { namespace: 'shop', workload: 'sessions' };
    metrics.workloadObserved(workload, {
      hourlyCostUsd: 0.07,
      onDemandHourlyCostUsd: 0.288,
      savingsToDateUsd: 12.5,
      availability: 0.9995,
      availabilityTarget: 0.999,
    });
    expect(await metrics.registry.metrics()).toContain(
      'ferry_workload_savings_usd{namespace="shop",workload="sessions"} 12.5',
    );
    metrics.workloadGone(workload);
    expect(await metrics.registry.metrics()).not.toContain(
      'workload="sessions"',
    );
  });

  it('serves /metrics, /healthz and a /readyz that waits for the caches', async () => {
    const metrics = new OperatorMetrics();
    metrics.leading(true);
    let ready = false;
    const server = new MetricsServer({
      metrics,
      ready: () => ready,
      host: '127.0.0.1',
    });
    const port = await server.start();
    try {
      const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`);
      expect((await get('/healthz')).status).toBe(200);
      expect((await get('/readyz')).status).toBe(503);
      ready = true;
      expect((await get('/readyz')).status).toBe(200);
      const body = await (await get('/metrics')).text();
      expect(body).toContain('ferry_leader 1');
      expect(body).toContain('ferry_process_cpu_seconds_total');
    } finally {
      await server.stop();
    }
  });
});
