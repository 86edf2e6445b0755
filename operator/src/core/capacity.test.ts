import { CapacityBook } from './capacity';
import type { NodeView } from './model';

function node(name: string, cpuMillis: number): NodeView {
  return {
    name,
    capacityType: 'spot',
    instanceType: 'm5.large',
    zone: 'eu-west-1a',
    allocatable: { cpuMillis: 2000, memoryMiB: 8192 },
    free: { cpuMillis, memoryMiB: 4096 },
  };
}

describe('CapacityBook', () => {
  it("books into its own copy: a copy's bookings leave the book and the node views as they were", () => {
    const views = [node('a', 1000), node('b', 600)];
    const book = new CapacityBook(views);
    const pool = { instanceType: 'm5.large', zone: 'eu-west-1a' };
    const request = { cpuMillis: 800, memoryMiB: 512 };

    const copy = book.copy();
    copy.book('a', request);
    // The copy has no room left for it; the book it came from still has node a's.
    expect(copy.findRoom('spot', pool, request, new Set())).toBeUndefined();
    expect(book.findRoom('spot', pool, request, new Set())?.name).toBe('a');
    expect(views[0].free).toEqual({ cpuMillis: 1000, memoryMiB: 4096 });

    // A copy of a copy starts from its bookings, and they stay apart from then on.
    const second = copy.copy();
    second.release('a', request);
    expect(second.findRoom('spot', pool, request, new Set())?.name).toBe('a');
    expect(copy.findRoom('spot', pool, request, new Set())).toBeUndefined();
  });
});
