/**
 * Table headers break between words only. Something above the table lets long
 * words break anywhere, so a squeezed column showed "Read y" and "Migratio ns";
 * with normal wrapping a column is at least as wide as its longest header word,
 * and a table too wide for its card scrolls sideways in its TableContainer.
 */
export const WHOLE_WORD_HEADERS = {
  '& thead th': { overflowWrap: 'normal', wordBreak: 'keep-all' },
} as const;
