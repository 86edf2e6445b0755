/**
 * Where the leader keeps what it observed of the spot pools (`PoolRiskHistory`):
 * one ConfigMap in the operator's namespace. Not rebuilt from Migrations: those
 * exist only for nodes that held a member, name no pool (the node is gone soon
 * after its notice), and are collected after the retention; a pool's record must
 * count every reclaim in it, for as long as the operator runs.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { apiRequest, isNotFound } from '../client/apiRequest';
import type { PoolRiskHistory } from '../pools/PoolRiskFeed';

/** The ConfigMap's key holding the history, as JSON. */
export const POOL_RISK_HISTORY_KEY = 'history.json';

/** The pool risk history in a ConfigMap. */
export class PoolRiskHistoryStore {
  constructor(
    private readonly kubeConfig: KubeConfig,
    readonly namespace: string,
    readonly name: string,
  ) {}

  private get path(): string {
    return `/api/v1/namespaces/${encodeURIComponent(
      this.namespace,
    )}/configmaps`;
  }

  /** The stored history; undefined when none was stored yet. Unreadable content is an error that names the ConfigMap. */
  async load(): Promise<PoolRiskHistory | undefined> {
    let configMap: { data?: Record<string, string> };
    try {
      configMap = await apiRequest(
        this.kubeConfig,
        'GET',
        `${this.path}/${encodeURIComponent(this.name)}`,
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const text = configMap.data?.[POOL_RISK_HISTORY_KEY];
    if (text === undefined) return undefined;
    let history: PoolRiskHistory;
    try {
      history = JSON.parse(text);
    } catch (error) {
      throw new Error(
        `ConfigMap ${this.namespace}/${
          this.name
        } key ${POOL_RISK_HISTORY_KEY} is not JSON (${
          (error as Error).message
        }); delete the ConfigMap and the operator starts a new history`,
      );
    }
    if (
      !Array.isArray(history?.pools) ||
      typeof history.counted !== 'object' ||
      history.counted === null
    ) {
      throw new Error(
        `ConfigMap ${this.namespace}/${this.name} key ${POOL_RISK_HISTORY_KEY} has no pools list and counted map; delete the ConfigMap and the operator starts a new history`,
      );
    }
    return history;
  }

  /** Writes the history over what is stored (the leader is its only writer). */
  async save(history: PoolRiskHistory): Promise<void> {
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'ferry' },
      },
      data: { [POOL_RISK_HISTORY_KEY]: JSON.stringify(history) },
    };
    try {
      await apiRequest(
        this.kubeConfig,
        'PUT',
        `${this.path}/${encodeURIComponent(this.name)}`,
        { body },
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await apiRequest(this.kubeConfig, 'POST', this.path, { body });
    }
  }
}
