/** How long a suite waits for a condition unless a call says otherwise: a busy two-core machine can stall the control plane for seconds. */
export const UNTIL_TIMEOUT_MS = 45_000;
/** How often a condition is looked at again. */
const UNTIL_INTERVAL_MS = 100;

/** How one wait goes. */
export interface UntilOptions {
  /** Gives up after this long (UNTIL_TIMEOUT_MS by default). */
  timeoutMs?: number;
  /** What the error says besides the condition, when it gives up. */
  detail?: () => string | Promise<string>;
}

/**
 * Waits until `check` returns something other than undefined or false, and
 * returns it; throws naming `what` (and `detail`) when `timeoutMs` passes
 * first. The control-plane suites' one way to wait.
 */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: UntilOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? UNTIL_TIMEOUT_MS);
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) {
      const detail = options.detail ? `: ${await options.detail()}` : '';
      throw new Error(`timed out waiting for ${what}${detail}`);
    }
    await new Promise(resolve => setTimeout(resolve, UNTIL_INTERVAL_MS));
  }
}
