// @ts-check

/**
 * The latest report of each workload and of each spot pool, so that the entity
 * status and the fleet summary are one indexed read, and stay readable while a
 * cluster is down.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('ferry_workloads', table => {
    table.comment('The latest SpotPolicy of each entity, as last ingested');
    table.string('entity_ref', 255).primary();
    table.string('cluster', 255).notNullable();
    table.string('namespace', 255).notNullable();
    table.string('kind', 32).notNullable();
    table.string('name', 255).notNullable();
    table.boolean('enabled').notNullable();
    table.text('policy').notNullable().comment('JSON settings');
    table.string('policy_source', 16).notNullable();
    table.text('status').nullable().comment('JSON SpotPolicy status');
    table.integer('replicas').notNullable();
    table.integer('spot_replicas').notNullable();
    table.double('hourly_cost_usd').notNullable();
    table.double('on_demand_hourly_cost_usd').notNullable();
    table.double('spend_to_date_usd').notNullable();
    table.double('savings_to_date_usd').notNullable();
    table.double('availability').notNullable();
    table.double('availability_target').notNullable();
    table.double('max_interruption_risk').notNullable();
    table.integer('migrations_total').notNullable();
    table.bigInteger('reported_at').notNullable();
    table.bigInteger('ingested_at').notNullable();
    table.index(['cluster'], 'ferry_workloads_cluster_idx');
  });
  await knex.schema.createTable('ferry_pools', table => {
    table.comment('The latest picture of each spot pool');
    table.string('cluster', 255).notNullable();
    table.string('zone', 64).notNullable();
    table.string('instance_type', 64).notNullable();
    table.double('spot_price_usd_per_hour').notNullable();
    table.double('on_demand_price_usd_per_hour').notNullable();
    table.double('interruption_risk').notNullable();
    table.integer('replicas').notNullable();
    table.bigInteger('updated_at').notNullable();
    table.primary(['cluster', 'zone', 'instance_type']);
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('ferry_pools');
  await knex.schema.dropTable('ferry_workloads');
};
