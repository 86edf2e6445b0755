import { mergeRows, mergeTableBetween, rowCells } from './benchTable';

const shape = {
  keyColumns: 3,
  order: (cells: string[]) => [['b', 'a'].indexOf(cells[0]), Number(cells[1]), cells[2] === 'x' ? 0 : 1],
};
const header = ['| name | rate | kind | result |', '|---|---|---|---|'];
const markers = { start: '<!-- t:start -->', end: '<!-- t:end -->' };

describe('benchmark tables built cell by cell', () => {
  it('splits a row into trimmed cells', () => {
    expect(rowCells('| a | 500 |  x y | 3 ms |')).toEqual(['a', '500', 'x y', '3 ms']);
  });

  it('replaces only the rows of the cells run again and keeps the rest, in order', () => {
    const previous = [
      ...header,
      '| a | 500 | x | old a500x |',
      '| a | 5000 | x | old a5000x |',
      '| b | 500 | y | old b500y |',
    ].join('\n');
    const rows = mergeRows(previous, ['| a | 5000 | x | new a5000x |', '| a | 20000 | y | new a20000y |', '| b | 500 | x | new b500x |'], shape);
    expect(rows).toEqual([
      '| b | 500 | x | new b500x |',
      '| b | 500 | y | old b500y |',
      '| a | 500 | x | old a500x |',
      '| a | 5000 | x | new a5000x |',
      '| a | 20000 | y | new a20000y |',
    ]);
  });

  it('writes the merged table between its markers and leaves the text around it alone', () => {
    const text = ['before', markers.start, ...header, '| a | 500 | x | kept |', markers.end, 'after', ''].join('\n');
    const once = mergeTableBetween(text, markers, header, ['| a | 50000 | y | measured |'], shape);
    expect(once).toBe(
      ['before', markers.start, ...header, '| a | 500 | x | kept |', '| a | 50000 | y | measured |', markers.end, 'after', ''].join('\n'),
    );
    // Built again from the same runs, nothing changes (no doubled rows or blank lines).
    expect(mergeTableBetween(once, markers, header, ['| a | 50000 | y | measured |'], shape)).toBe(once);
  });

  it('refuses a text without the markers', () => {
    expect(() => mergeTableBetween('no table here', markers, header, [], shape)).toThrow(/markers/);
  });
});
