import { ANNOTATION_HIBERNATE_AFTER } from './annotations';

/**
 * The shortest idle period accepted. Below it a container would be checkpointed
 * between two requests of an ordinary client; the post's demo uses 10 s.
 */
export const MIN_HIBERNATE_AFTER_MS = 5_000;
/** The longest: beyond a week an owner means "never", which is the annotation's absence. */
export const MAX_HIBERNATE_AFTER_MS = 7 * 24 * 3_600_000;

const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION = /^(\d+)(s|m|h)$/;

/**
 * Reads `ferry.dev/hibernate-after`, or a SpotPolicy's `hibernateAfter` (`10s`,
 * `10m`, `2h`: a whole number and one unit), into milliseconds. A value that does not fit is an error that says what
 * would, since a silently ignored typo would leave a store awake and billed.
 */
export function parseHibernateAfter(value: string): number {
  const match = DURATION.exec(value.trim());
  if (!match) {
    throw new Error(
      `${ANNOTATION_HIBERNATE_AFTER} is '${value}'; give a whole number of seconds, minutes or hours, such as 10s, 10m or 2h`,
    );
  }
  const ms = Number(match[1]) * UNIT_MS[match[2]];
  if (ms < MIN_HIBERNATE_AFTER_MS || ms > MAX_HIBERNATE_AFTER_MS) {
    throw new Error(
      `${ANNOTATION_HIBERNATE_AFTER} is '${value}'; it must be between ${
        MIN_HIBERNATE_AFTER_MS / 1_000
      }s and ${MAX_HIBERNATE_AFTER_MS / 3_600_000}h`,
    );
  }
  return ms;
}
