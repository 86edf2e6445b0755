import '@testing-library/jest-dom';
import { configure } from '@testing-library/react';

// findBy and waitFor give up after 1 s by default; a busy two-core machine
// renders the whole tab slower than that without anything being wrong.
configure({ asyncUtilTimeout: 10_000 });
