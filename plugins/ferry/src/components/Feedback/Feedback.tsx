import { ReactNode } from 'react';
import Alert from '@mui/material/Alert';
import AlertTitle from '@mui/material/AlertTitle';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import CircularProgress from '@mui/material/CircularProgress';
import Typography from '@mui/material/Typography';

/** A spinner that says what it waits for, announced to screen readers. */
export function LoadingPanel(props: { label: string }) {
  return (
    <Box
      role="status"
      aria-live="polite"
      display="flex"
      alignItems="center"
      gap={2}
      p={3}
      data-testid="ferry-loading"
    >
      <CircularProgress size={24} aria-hidden />
      <Typography variant="body2">{props.label}</Typography>
    </Box>
  );
}

/** Whether an error is the backend saying it has nothing for this request. */
export function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; response?: { status?: number } };
  return e?.name === 'NotFoundError' || e?.response?.status === 404;
}

/** Whether an error is the backend refusing the caller. */
export function isForbidden(error: unknown): boolean {
  const e = error as { name?: string; response?: { status?: number } };
  return e?.name === 'NotAllowedError' || e?.response?.status === 403;
}

/** An error that says what failed, the server's reason, and what to do. */
export function ErrorPanel(props: {
  title: string;
  error: Error;
  hint?: ReactNode;
  onRetry?: () => void;
}) {
  const { title, error, hint, onRetry } = props;
  const status = (error as { response?: { status?: number } }).response?.status;
  let defaultHint: string | undefined;
  if (status === undefined) {
    defaultHint =
      'The portal could not reach the Ferry backend. Check your connection and try again.';
  } else if (status >= 500) {
    defaultHint =
      'The Ferry backend failed. Try again; if it keeps failing, check the backend logs.';
  }
  return (
    <Alert
      severity="error"
      data-testid="ferry-error"
      action={
        onRetry ? (
          <Button color="inherit" size="small" onClick={onRetry}>
            Try again
          </Button>
        ) : undefined
      }
    >
      <AlertTitle>{title}</AlertTitle>
      <Typography variant="body2" component="p">
        {error.message}
      </Typography>
      {(hint ?? defaultHint) && (
        <Typography variant="body2" component="p" sx={{ mt: 1 }}>
          {hint ?? defaultHint}
        </Typography>
      )}
    </Alert>
  );
}

/** Nothing to show yet, and what a person can do about it. */
export function EmptyPanel(props: {
  title: string;
  children?: ReactNode;
  action?: ReactNode;
  testId?: string;
}) {
  return (
    <Box p={3} textAlign="center" data-testid={props.testId ?? 'ferry-empty'}>
      <Typography variant="subtitle1" component="p" gutterBottom>
        {props.title}
      </Typography>
      {props.children && (
        <Typography variant="body2" color="text.secondary" component="div">
          {props.children}
        </Typography>
      )}
      {props.action && <Box mt={2}>{props.action}</Box>}
    </Box>
  );
}
