// @ts-check

/**
 * History: cost and availability samples, migrations and policy changes.
 *
 * Times are epoch milliseconds in BIGINT columns, so that bucketing is the same
 * integer arithmetic on SQLite and PostgreSQL (the PostgreSQL driver returns
 * BIGINT as a string; the store converts).
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('ferry_cost_samples', table => {
    table.comment('Spend of a workload in the hour that starts at sampled_at');
    table.string('entity_ref', 255).notNullable();
    table.bigInteger('sampled_at').notNullable();
    table.bigInteger('covers_ms').notNullable();
    table.double('spot_usd').notNullable();
    table.double('permanent_usd').notNullable();
    table
      .double('on_demand_usd')
      .notNullable()
      .comment('What the same replicas cost on on-demand nodes');
    table.primary(['entity_ref', 'sampled_at']);
    // Retention deletes by age across all entities.
    table.index(['sampled_at'], 'ferry_cost_samples_sampled_idx');
  });
  await knex.schema.createTable('ferry_availability_samples', table => {
    table.comment('Ready members of a workload against its quorum, per hour');
    table.string('entity_ref', 255).notNullable();
    table.bigInteger('sampled_at').notNullable();
    table.bigInteger('covers_ms').notNullable();
    table
      .bigInteger('quorum_ms')
      .notNullable()
      .comment('Part of covers_ms with at least the required members ready');
    table.integer('ready_members').notNullable();
    table.integer('required_members').notNullable();
    table.primary(['entity_ref', 'sampled_at']);
    table.index(['sampled_at'], 'ferry_availability_samples_sampled_idx');
  });
  await knex.schema.createTable('ferry_migrations', table => {
    table.comment(
      'Migrations as the operator reported them, kept after the cluster forgets them',
    );
    table
      .string('id', 512)
      .primary()
      .comment('cluster/namespace/name of the Migration object');
    table.string('entity_ref', 255).notNullable();
    table.string('cluster', 255).notNullable();
    table.string('namespace', 255).notNullable();
    table.string('workload', 255).notNullable();
    table.string('pod', 255).notNullable();
    table.string('source_node', 255).notNullable();
    table.string('target_node', 255).nullable();
    table.string('reason', 32).notNullable();
    table.string('driver', 32).notNullable();
    table.string('phase', 32).notNullable();
    table.string('outcome', 32).notNullable();
    table.text('phases').notNullable().comment('JSON array of phase timings');
    table.bigInteger('bytes_moved').notNullable();
    table.double('write_pause_ms').nullable();
    table.text('message').nullable();
    table.bigInteger('started_at').notNullable();
    table.bigInteger('finished_at').nullable();
    table.index(
      ['entity_ref', 'started_at'],
      'ferry_migrations_entity_started_idx',
    );
    table.index(['started_at'], 'ferry_migrations_started_idx');
  });
  await knex.schema.createTable('ferry_policy_changes', table => {
    table.comment(
      'Every change of a spot policy: who, when, from where, before and after',
    );
    table.bigIncrements('id').primary();
    table.string('entity_ref', 255).notNullable();
    table.string('source', 16).notNullable();
    table.string('changed_by', 255).notNullable();
    table.bigInteger('changed_at').notNullable();
    table
      .text('before')
      .nullable()
      .comment('JSON settings; null when the policy was created');
    table.text('after').notNullable().comment('JSON settings');
    table.index(
      ['entity_ref', 'changed_at'],
      'ferry_policy_changes_entity_idx',
    );
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('ferry_policy_changes');
  await knex.schema.dropTable('ferry_migrations');
  await knex.schema.dropTable('ferry_availability_samples');
  await knex.schema.dropTable('ferry_cost_samples');
};
