/**
 * A benchmark's Markdown table in the docs, built cell by cell: a run rewrites
 * only the rows of the cells it measured and keeps every other row as it was, so
 * the grid can be measured one cell at a time, on different days and machines,
 * without the results of earlier runs (kept nowhere but in the docs) being lost.
 */

/** The cells of one Markdown table row, trimmed. */
export function rowCells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map(c => c.trim());
}

/** How rows are identified and ordered. */
export interface TableShape {
  /** A row replaces an earlier one whose first `keyColumns` cells are the same. */
  keyColumns: number;
  /** Sort key of a row from its cells (compared element by element). */
  order: (cells: string[]) => number[];
}

/**
 * The rows of `previous` (a table: header, separator, rows) merged with `fresh`
 * rows: a fresh row replaces the previous row with the same key, previous rows
 * of other keys stay, all sorted by `shape.order`.
 */
export function mergeRows(previous: string, fresh: string[], shape: TableShape): string[] {
  const keyOf = (line: string) => rowCells(line).slice(0, shape.keyColumns).join('|');
  const rows = new Map<string, string>();
  const lines = previous.split('\n').filter(l => l.trim().startsWith('|'));
  // The first two lines are the header and its separator.
  for (const line of lines.slice(2)) rows.set(keyOf(line), line.trim());
  for (const line of fresh) rows.set(keyOf(line), line);
  return [...rows.values()].sort((a, b) => {
    const [x, y] = [shape.order(rowCells(a)), shape.order(rowCells(b))];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    }
    return 0;
  });
}

/**
 * `text` with the table between the `start` and `end` markers replaced by
 * `header` and the previous rows merged with `fresh` ({@link mergeRows}).
 */
export function mergeTableBetween(
  text: string,
  markers: { start: string; end: string },
  header: string[],
  fresh: string[],
  shape: TableShape,
): string {
  const [start, end] = [text.indexOf(markers.start), text.indexOf(markers.end)];
  if (start < 0 || end < start) throw new Error(`no ${markers.start} ... ${markers.end} markers for the table`);
  const previous = text.slice(start + markers.start.length, end);
  const rows = mergeRows(previous, fresh, shape);
  return `${text.slice(0, start + markers.start.length)}\n${[...header, ...rows].join('\n')}\n${text.slice(end)}`;
}
