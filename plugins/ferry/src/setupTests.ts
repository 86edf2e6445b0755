import '@testing-library/jest-dom';
import { configure } from '@testing-library/react';

// findBy and waitFor give up after 1 s by default; a busy two-core machine
// renders the whole tab slower than that without anything being wrong.
configure({ asyncUtilTimeout: 10_000 });

// jsdom has no layout: recharts' ResponsiveContainer needs a ResizeObserver
// that reports a size, or it renders nothing.
class ResizeObserverStub {
  private readonly callback: ResizeObserverCallback;
  constructor(callback: ResizeObserverCallback) {
    this.callback = callback;
  }
  observe(target: Element) {
    this.callback(
      [
        {
          target,
          contentRect: {
            width: 800,
            height: 300,
            top: 0,
            left: 0,
            bottom: 300,
            right: 800,
            x: 0,
            y: 0,
          },
        } as unknown as ResizeObserverEntry,
      ],
      this as unknown as ResizeObserver,
    );
  }
  unobserve() {}
  disconnect() {}
}
(globalThis as any).ResizeObserver = ResizeObserverStub;

// The whole entity tab renders five views with charts; on a busy machine that
// outgrows Jest's default of 5 s without anything being wrong.
jest.setTimeout(30_000);
