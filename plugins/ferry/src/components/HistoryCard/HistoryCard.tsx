import { DependencyList, ReactNode } from 'react';
import { useLoader } from '../../hooks/useLoader';
import { STATUS_REFRESH_MS } from '../../refresh';
import { EmptyPanel, ErrorPanel, LoadingPanel } from '../Feedback';
import { SectionCard } from '../SectionCard';

/**
 * A card over a range of an entity's history (its cost, its availability):
 * loads the series, asks again at every status refresh, and says what is
 * wrong when it cannot load or the range holds nothing.
 */
export function HistoryCard<S extends { points: unknown[] }>(props: {
  /** Stem of the card's ids, as SectionCard takes it. */
  id: string;
  testId?: string;
  title: string;
  subheader: string;
  /** What the history is of, in lower case: `cost`, `availability`. */
  what: string;
  /** The picked range, as the range picker names it: `30 days`. */
  rangeLabel: string;
  load: () => Promise<S>;
  /** What else the series depends on besides the picked range. */
  deps: DependencyList;
  /** The card's content once there is a series with points. */
  children: (series: S) => ReactNode;
}) {
  const { what, rangeLabel } = props;
  // The picked range (its label) is the question. Its times move on their own
  // in demo mode, where the range ends at the operator's clock: the history is
  // then asked again in place at the next refresh, keeping the chart (and a
  // data table a person opened) on screen instead of a spinner each time.
  const loaded = useLoader(props.load, [...props.deps, rangeLabel], {
    refreshMs: STATUS_REFRESH_MS,
  });

  let body;
  if (loaded.loading) {
    body = <LoadingPanel label={`Loading ${what} history…`} />;
  } else if (!loaded.value) {
    body = (
      <ErrorPanel
        title={`Could not load the ${what} history`}
        error={loaded.error!}
        onRetry={loaded.retry}
      />
    );
  } else if (loaded.value.points.length === 0) {
    body = (
      <EmptyPanel title={`No ${what} recorded in the last ${rangeLabel}`}>
        {what.charAt(0).toUpperCase() + what.slice(1)} samples start when the
        service opts in. Pick a shorter range, or come back once it has run on
        Ferry for a while.
      </EmptyPanel>
    );
  } else {
    body = props.children(loaded.value);
  }

  return (
    <SectionCard
      id={props.id}
      testId={props.testId}
      title={props.title}
      subheader={props.subheader}
    >
      {body}
    </SectionCard>
  );
}
