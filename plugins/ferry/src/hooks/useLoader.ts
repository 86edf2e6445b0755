import {
  DependencyList,
  useCallback,
  useEffect,
  useRef,
  useState,
} from 'react';

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
 * or retry keeps the last value on screen instead of flashing a spinner; new
 * deps start from a spinner; a late answer for stale deps is dropped.
 */
export function useLoader<T>(
  load: () => Promise<T>,
  deps: DependencyList,
  options: { refreshMs?: number } = {},
): LoaderState<T> {
  const [state, setState] = useState<{
    value?: T;
    error?: Error;
    loading: boolean;
  }>({
    loading: true,
  });
  const [attempt, setAttempt] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const lastDeps = useRef<DependencyList>();

  useEffect(() => {
    let stale = false;
    // New deps ask a new question: the old answer must not pass for the new
    // one. A retry or a new refresh interval asks the same one again.
    const sameQuestion =
      lastDeps.current !== undefined &&
      lastDeps.current.length === deps.length &&
      lastDeps.current.every((d, i) => Object.is(d, deps[i]));
    lastDeps.current = deps;
    if (!sameQuestion) setState({ loading: true });
    const run = () =>
      loadRef.current().then(
        value => {
          if (!stale) setState({ value, loading: false });
        },
        (error: Error) => {
          if (!stale)
            setState(s => ({ value: s.value, error, loading: false }));
        },
      );
    run();
    const timer =
      options.refreshMs !== undefined
        ? setInterval(run, options.refreshMs)
        : undefined;
    return () => {
      stale = true;
      if (timer) clearInterval(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, attempt, options.refreshMs]);

  const retry = useCallback(() => setAttempt(a => a + 1), []);
  return { ...state, retry };
}
