import { act, render, screen } from '@testing-library/react';
import { useLoader } from './useLoader';

function Probe(props: {
  load: (q: string) => Promise<string>;
  q: string;
  refreshMs?: number;
}) {
  const state = useLoader(() => props.load(props.q), [props.q], {
    refreshMs: props.refreshMs,
  });
  if (state.loading) return <p>loading</p>;
  return (
    <p>
      {state.value ?? 'none'}{' '}
      {state.error ? `error: ${state.error.message}` : ''}
    </p>
  );
}

describe('useLoader', () => {
  afterEach(() => jest.useRealTimers());

  it('keeps the last value through a failed refresh, and starts over for new deps', async () => {
    jest.useFakeTimers();
    const load = jest
      .fn<Promise<string>, [string]>()
      .mockImplementationOnce(async q => `answer to ${q}`)
      .mockImplementationOnce(async () => {
        throw new Error('flaky');
      })
      .mockImplementation(async q => `answer to ${q}`);
    const { rerender } = render(<Probe load={load} q="a" refreshMs={1000} />);
    expect(await screen.findByText('answer to a')).toBeInTheDocument();

    await act(async () => {
      jest.advanceTimersByTime(1000);
    });
    expect(screen.getByText('answer to a error: flaky')).toBeInTheDocument();

    let resolveB: (v: string) => void = () => {};
    load.mockImplementationOnce(() => new Promise(r => (resolveB = r)));
    rerender(<Probe load={load} q="b" refreshMs={1000} />);
    expect(screen.getByText('loading')).toBeInTheDocument();
    await act(async () => resolveB('answer to b'));
    expect(screen.getByText('answer to b')).toBeInTheDocument();
  });
});
