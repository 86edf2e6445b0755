import type { RiskCoefficients } from '../core/risk';

/**
 * Risk coefficients of demo mode, learned from the traces shipped in
 * `operator/data` (first 70 % of each trace's time range), in the order of
 * `RISK_FEATURES`. Reproduce with:
 *
 *   npm run bench -- risk --trace operator/data/skypilot_spot_traces --advisor operator/data/aws_spot_advisor_linux_2025-06.csv
 *
 * The large intercept says that the measured traces are interrupted far more
 * often than the advisor bands of their types suggest (the band is an offset).
 */
export const DEMO_RISK_COEFFICIENTS: RiskCoefficients = {
  intercept: 6.8881,
  weights: [1, 0.1395, -0.1047, 0.0361, 2.8626, 0, 0, 0],
};
