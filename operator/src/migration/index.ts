/** The migration engine: a resumable state machine and the drivers that move a member's state. */
export * from './MigrationDriver';
export * from './MigrationStore';
export * from './MigrationStateMachine';
export * from './valkey/ValkeyAdmin';
export * from './valkey/ValkeyDriver';
export * from './checkpoint/CheckpointDriver';
export * from './checkpoint/KubeletCheckpointClient';
export * from './volume/VolumeDriver';
export * from './reschedule/RescheduleDriver';
export * from './valkey/serverFacts';
export * from './autoMethod';
