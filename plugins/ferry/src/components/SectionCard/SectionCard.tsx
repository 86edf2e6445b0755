import { ReactNode } from 'react';
import Card from '@mui/material/Card';
import CardActions from '@mui/material/CardActions';
import CardContent from '@mui/material/CardContent';
import CardHeader from '@mui/material/CardHeader';

/**
 * The frame every Ferry card shares: a section named by its title (an h2, so a
 * screen reader lists the cards among the page's headings), an optional line
 * under the title, the content, and optional actions at the foot.
 */
export function SectionCard(props: {
  /** Stem of the title's element id (`<id>-title`) and, by default, of the test id. */
  id: string;
  title: string;
  subheader?: ReactNode;
  /** `data-testid` of the card; `id` unless given. */
  testId?: string;
  /** Fills its grid cell, as the Overview tab's cards do. */
  fullHeight?: boolean;
  actions?: ReactNode;
  children: ReactNode;
}) {
  const titleId = `${props.id}-title`;
  return (
    <Card
      component="section"
      aria-labelledby={titleId}
      data-testid={props.testId ?? props.id}
      sx={props.fullHeight ? { height: '100%' } : undefined}
    >
      <CardHeader
        title={props.title}
        titleTypographyProps={{ id: titleId, component: 'h2', variant: 'h6' }}
        subheader={props.subheader}
      />
      <CardContent>{props.children}</CardContent>
      {props.actions && <CardActions>{props.actions}</CardActions>}
    </Card>
  );
}
