/* The data a user tries first, plus a bulk dataset, and the checks that nothing went missing. */
import type Valkey from 'iovalkey';

/** The keys from the first scenario. */
export const SCENARIO_KEYS = {
  session: {
    key: 'session:u9f3a',
    fields: { user_id: '4821', role: 'admin', last_seen: '2026-05-28T14:03:00Z' },
  },
  jobs: { key: 'jobs:email', items: ['send-welcome:4821', 'send-invoice:4819'] },
  context: { key: 'agent:ctx:4821', value: 'user prefers weekly summaries, timezone UTC+1' },
};

/** Writes the scenario keys through an application connection. */
export async function writeScenarioKeys(client: Valkey): Promise<void> {
  const s = SCENARIO_KEYS;
  await client.hset(s.session.key, s.session.fields);
  await client.lpush(s.jobs.key, ...s.jobs.items);
  await client.set(s.context.key, s.context.value);
}

/** Reads the scenario keys back in the shape they were written. */
export async function readScenarioKeys(client: Valkey): Promise<{
  session: Record<string, string>;
  jobs: string[];
  context: string | null;
}> {
  const s = SCENARIO_KEYS;
  return {
    session: await client.hgetall(s.session.key),
    jobs: await client.lrange(s.jobs.key, 0, -1),
    context: await client.get(s.context.key),
  };
}

/** Fills a member with `keys` keys of `valueBytes` each (`bulk:0..n-1`), server-side. */
export async function populate(admin: Valkey, keys: number, valueBytes: number): Promise<void> {
  await admin.call('DEBUG', 'POPULATE', keys, 'bulk', valueBytes);
}

/** How many of the `bulk:` keys a member holds, by sampling every `stride`-th key plus the count. */
export async function bulkKeysPresent(client: Valkey, keys: number): Promise<number> {
  let present = 0;
  const BATCH = 5000;
  for (let i = 0; i < keys; i += BATCH) {
    const names = Array.from({ length: Math.min(BATCH, keys - i) }, (_, j) => `bulk:${i + j}`);
    present += Number(await client.call('EXISTS', ...names));
  }
  return present;
}
