/** How long a suite waits for a condition unless a call says otherwise: a busy two-core machine can stall the control plane for seconds. */
export const UNTIL_TIMEOUT_MS = 45_000;
/** How often a condition is looked at again unless a call says otherwise. */
const UNTIL_INTERVAL_MS = 100;

/** How one wait goes. */
export interface UntilOptions {
  /** Gives up after this long (UNTIL_TIMEOUT_MS by default). */
  timeoutMs?: number;
  /** Looks again after this long (100 ms by default); shorter to catch a brief state. */
  intervalMs?: number;
  /** What the error says besides the condition, when it gives up. */
  detail?: () => string | Promise<string>;
}

/**
 * Waits until `check` returns something other than undefined or false, and
 * returns it; throws naming `what` (and `detail`) when `timeoutMs` passes
 * first. The control-plane suites' one way to wait for a state.
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
    await new Promise(resolve =>
      setTimeout(resolve, options.intervalMs ?? UNTIL_INTERVAL_MS),
    );
  }
}

/**
 * Runs `check` until it no longer throws (its `expect`s hold), as Gomega's
 * Eventually does, and returns what it returned; when `timeoutMs` passes
 * first, throws the last failure, with `detail` added to its message.
 */
export async function eventually<T>(
  check: () => Promise<T> | T,
  options: UntilOptions = {},
): Promise<T> {
  let failure: unknown;
  const passed = await until(
    'a check to pass',
    async () => {
      try {
        return { value: await check() };
      } catch (error) {
        failure = error;
        return undefined;
      }
    },
    { ...options, detail: undefined },
  ).catch(async () => {
    if (failure instanceof Error && options.detail) {
      failure.message = `${failure.message}\n${await options.detail()}`;
    }
    throw failure;
  });
  return passed.value;
}
