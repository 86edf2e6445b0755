import { ReactNode, useId, useState } from 'react';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Table from '@mui/material/Table';
import TableBody from '@mui/material/TableBody';
import TableCell from '@mui/material/TableCell';
import TableContainer from '@mui/material/TableContainer';
import TableHead from '@mui/material/TableHead';
import TableRow from '@mui/material/TableRow';
import { WHOLE_WORD_HEADERS } from '../tableLayout';

/** Chart height in pixels; one home so every chart lines up. */
export const CHART_HEIGHT = 280;

/**
 * A chart with what a screen reader needs: a summary as its label, and the
 * same data as a table a person can open instead of reading the picture.
 */
export function ChartFigure(props: {
  /** One sentence saying what the chart shows and its headline figure. */
  summary: string;
  columns: string[];
  rows: ReactNode[][];
  children: ReactNode;
  testId?: string;
}) {
  const [showTable, setShowTable] = useState(false);
  const tableId = useId();
  return (
    <Box component="figure" m={0} data-testid={props.testId}>
      <Box role="img" aria-label={props.summary} height={CHART_HEIGHT}>
        {props.children}
      </Box>
      <Box component="figcaption" mt={1}>
        <Button
          size="small"
          aria-expanded={showTable}
          aria-controls={tableId}
          onClick={() => setShowTable(s => !s)}
        >
          {showTable ? 'Hide data table' : 'Show data as a table'}
        </Button>
      </Box>
      {showTable && (
        <TableContainer id={tableId} sx={{ maxHeight: 320 }}>
          <Table
            sx={WHOLE_WORD_HEADERS}
            size="small"
            stickyHeader
            aria-label={props.summary}
          >
            <TableHead>
              <TableRow>
                {props.columns.map(c => (
                  <TableCell key={c}>{c}</TableCell>
                ))}
              </TableRow>
            </TableHead>
            <TableBody>
              {props.rows.map((row, i) => (
                <TableRow key={i}>
                  {row.map((cell, j) => (
                    <TableCell key={j}>{cell}</TableCell>
                  ))}
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </TableContainer>
      )}
    </Box>
  );
}
