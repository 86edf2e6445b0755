import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { Clock, systemClock } from '../../core/clock';
import { apiRequest } from './apiRequest';
import { microTime } from '../leadership/LeaderElector';
import { REPORTING_CONTROLLER } from './ferryKeys';

/** The object an Event is about. */
export interface EventSubject {
  apiVersion: string;
  kind: string;
  name: string;
  /** Unset for cluster-scoped objects such as Nodes. */
  namespace?: string;
  uid?: string;
}

/** What happened, in the words `kubectl describe` will show. */
export interface EventNote {
  type: 'Normal' | 'Warning';
  /** Why, in UpperCamelCase: `SpotReclaimed`, `MigrationSucceeded`. */
  reason: string;
  /** What the operator did, in UpperCamelCase: `Migrate`, `Place`, `Cordon`. */
  action: string;
  /** A sentence for a person. */
  note: string;
  /** A second object the event involves, e.g. the Migration for a Pod's move. */
  related?: EventSubject;
}

/** A repeat of the same event within this long counts on the first instead of adding another. */
const SERIES_WINDOW_MS = 10 * 60_000;
/** Events of cluster-scoped objects live here, as kubectl expects. */
const CLUSTER_EVENTS_NAMESPACE = 'default';
/** The API server refuses longer notes. */
const MAX_NOTE_LENGTH = 1024;

function eventName(subject: string, now: number): string {
  const suffix = `${(now * 1_000_000).toString(16)}${randomBytes(2).toString(
    'hex',
  )}`;
  return `${subject.slice(0, 253 - suffix.length - 1)}.${suffix}`;
}

interface Recorded {
  namespace: string;
  name: string;
  count: number;
  at: number;
}

/**
 * Records Kubernetes Events (events.k8s.io/v1) for the decisions a person would
 * want to see. A repeat of the same event is folded into one Event with a
 * growing `series.count`, as the kubelet's are. Recording never throws: an
 * Event that cannot be written must not stop the decision it reports.
 */
export class EventRecorder {
  private readonly recent = new Map<string, Recorded>();

  constructor(
    private readonly options: {
      kubeConfig: KubeConfig;
      /** This replica, e.g. its pod name. */
      instance: string;
      clock?: Clock;
      onError?: (error: unknown) => void;
    },
  ) {}

  async record(subject: EventSubject, event: EventNote): Promise<void> {
    const clock = this.options.clock ?? systemClock;
    const now = clock.now();
    const namespace = subject.namespace ?? CLUSTER_EVENTS_NAMESPACE;
    const key = [
      subject.kind,
      namespace,
      subject.name,
      subject.uid,
      event.type,
      event.reason,
      event.action,
      event.note,
    ].join('\u0000');
    try {
      const previous = this.recent.get(key);
      if (previous && now - previous.at < SERIES_WINDOW_MS) {
        previous.count++;
        previous.at = now;
        await apiRequest(
          this.options.kubeConfig,
          'PATCH',
          `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(
            previous.namespace,
          )}/events/${encodeURIComponent(previous.name)}`,
          {
            contentType: 'application/merge-patch+json',
            body: {
              series: {
                count: previous.count,
                lastObservedTime: microTime(now),
              },
            },
          },
        );
        return;
      }
      const reference = (s: EventSubject) => ({
        apiVersion: s.apiVersion,
        kind: s.kind,
        name: s.name,
        namespace: s.namespace,
        uid: s.uid,
      });
      const created = await apiRequest<{ metadata: { name: string } }>(
        this.options.kubeConfig,
        'POST',
        `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(
          namespace,
        )}/events`,
        {
          body: {
            apiVersion: 'events.k8s.io/v1',
            kind: 'Event',
            // As client-go names them; generateName is refused for Events (its
            // trailing dot is not a valid name).
            metadata: { name: eventName(subject.name, now), namespace },
            eventTime: microTime(now),
            reportingController: REPORTING_CONTROLLER,
            reportingInstance: this.options.instance,
            type: event.type,
            reason: event.reason,
            action: event.action,
            note: event.note.slice(0, MAX_NOTE_LENGTH),
            regarding: reference(subject),
            related: event.related ? reference(event.related) : undefined,
          },
        },
      );
      this.recent.set(key, {
        namespace,
        name: created.metadata.name,
        count: 1,
        at: now,
      });
      this.forgetOld(now);
    } catch (error) {
      this.options.onError?.(error);
    }
  }

  private forgetOld(now: number): void {
    for (const [key, recorded] of this.recent) {
      if (now - recorded.at >= SERIES_WINDOW_MS) this.recent.delete(key);
    }
  }
}
