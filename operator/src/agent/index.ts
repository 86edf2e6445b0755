/** Ferry's node agent: checkpoint, stream and restore on its node, at the operator's request. */
export * from './NodeAgent';
export * from './NodeAgentClient';
