// Test helpers only: imported by *.test.tsx, never by the plugin itself. The data
// is the dev harness's sample service (dev/sampleService.ts).
import type { FerryApi } from '../api';
import { applyPolicyUpdate } from '@ferry/plugin-ferry-common';
import {
  availabilitySeries,
  costSeries,
  entityStatus,
  fleetSummary,
  migrationPage,
  policyView,
} from '../../dev/sampleService';

export * from '../../dev/sampleService';

/** A FerryApi whose every method answers from the fixtures unless overridden. */
export function mockFerryApi(
  overrides: Partial<FerryApi> = {},
): jest.Mocked<FerryApi> {
  return {
    getStatus: jest.fn(async () => entityStatus),
    getCost: jest.fn(async () => costSeries),
    getAvailability: jest.fn(async () => availabilitySeries),
    getMigrations: jest.fn(async () => migrationPage),
    getPolicy: jest.fn(async () => policyView),
    updatePolicy: jest.fn(async (_entity, update) => ({
      ...policyView,
      policy: applyPolicyUpdate(policyView.policy, update),
      source: 'portal' as const,
    })),
    getFleet: jest.fn(async () => fleetSummary),
    getHealth: jest.fn(async () => ({
      status: 'ok' as const,
      mode: 'demo' as const,
      clusters: [],
    })),
    ...overrides,
  } as jest.Mocked<FerryApi>;
}

/** An error shaped like `ResponseError` for a given status. */
export function responseError(status: number, message: string): Error {
  const error = new Error(message) as Error & { response: { status: number } };
  error.name = 'ResponseError';
  error.response = { status };
  return error;
}
