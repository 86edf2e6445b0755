import { DependencyList, useCallback, useEffect, useRef, useState } from 'react';

/** What {@link useLoader} returns. */
export interface LoaderState<T> {
  value?: T;
  error?: Error;
  /** True only until the first answer; later refreshes keep showing the last value. */
  loading: boolean;
  retry: () => void;
}

/**
 * Runs `load` when `deps` change, and every `refreshMs` if given. A refresh
 * keeps the last value on screen instead of flashing a spinner, and a late
 * answer for stale deps is dropped.
 */
export function useLoader<T>(
  load: () => Promise<T>,
  deps: DependencyList,
  options: { refreshMs?: number } = {},
): LoaderState<T> {
  const [state, setState] = useState<{ value?: T; error?: Error; loading: boolean }>({
    loading: true,
  });
  const [attempt, setAttempt] = useState(0);
  const generation = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const current = ++generation.current;
    setState(s => (s.value === undefined ? { loading: true } : s));
    const run = () =>
      loadRef.current().then(
        value => {
          if (generation.current === current) {
            setState({ value, loading: false });
          }
        },
        (error: Error) => {
          if (generation.current === current) {
            setState(s => ({ value: s.value, error, loading: false }));
          }
        },
      );
    run();
    const timer =
      options.refreshMs !== undefined
        ? setInterval(run, options.refreshMs)
        : undefined;
    return () => {
      generation.current++;
      if (timer) clearInterval(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, attempt, options.refreshMs]);

  const retry = useCallback(() => setAttempt(a => a + 1), []);
  return { ...state, retry };
}
