import type { RiskCoefficients } from './risk';

/**
 * Risk coefficients the operator ships, in demo mode and on a cluster alike,
 * learned from the traces in `operator/data` (first 70 % of each trace's time
 * range), in the order of `RISK_FEATURES`. Reproduce with:
 *
 *   npm run bench -- risk --trace operator/data/skypilot_spot_traces --advisor operator/data/aws_spot_advisor_linux_2025-06.csv
 *
 * The large intercept says that the measured traces are interrupted far more
 * often than the advisor bands of their types suggest (the band is an offset).
 */
export const SHIPPED_RISK_COEFFICIENTS: RiskCoefficients = {
  intercept: 6.8881,
  weights: [1, 0.1395, -0.1047, 0.0361, 2.8626, 0, 0, 0],
};

/** Where the shipped coefficients were fitted, for the benchmarks' reports. */
export const SHIPPED_RISK_SOURCE = 'first 70 % of each single-node trace of operator/data';
