import type { V1Pod } from '@kubernetes/client-node';
import { type ObjectEvent, objectKey } from '../informers/Reflector';

/**
 * Pods grouped by a key of their own (the node they are bound to, the uid of
 * their controller), kept current from the watch's events one pod at a time.
 * A group's list is the same array for as long as none of its pods changes,
 * so that what is derived from it (a node's view, a workload's) can be kept
 * too: on a cluster of 50,000 pods, grouping every pod again after each pod
 * event was most of a planning pass.
 */
export class PodGroups {
  /** The group each pod is in now, by the pod's `namespace/name`. */
  private readonly groupOfPod = new Map<string, string>();
  private readonly groups = new Map<string, Map<string, V1Pod>>();
  /** Each group's pods as a list, made when first asked for after a change. */
  private readonly lists = new Map<string, readonly V1Pod[]>();

  constructor(private readonly groupOf: (pod: V1Pod) => string | undefined) {}

  /** Takes in one change of the pods' cache. */
  apply(event: ObjectEvent<V1Pod>): void {
    const key = objectKey(event.object);
    const before = this.groupOfPod.get(key);
    if (before !== undefined) {
      const group = this.groups.get(before)!;
      group.delete(key);
      if (group.size === 0) this.groups.delete(before);
      this.lists.delete(before);
      this.groupOfPod.delete(key);
    }
    if (event.type === 'DELETED') return;
    const after = this.groupOf(event.object);
    if (after === undefined) return;
    let group = this.groups.get(after);
    if (!group) this.groups.set(after, (group = new Map()));
    group.set(key, event.object);
    this.lists.delete(after);
    this.groupOfPod.set(key, after);
  }

  /** The group's pods (shared: read them, do not change them); the same array while the group is unchanged. */
  get(group: string): readonly V1Pod[] {
    let list = this.lists.get(group);
    if (!list) {
      list = [...(this.groups.get(group)?.values() ?? [])];
      this.lists.set(group, list);
    }
    return list;
  }
}
