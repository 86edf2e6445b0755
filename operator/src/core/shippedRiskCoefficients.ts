import type { RiskCoefficients } from './risk';

/** The horizon the shipped coefficients predict for (the operator's default, `predictionHorizonMinutes`). */
export const SHIPPED_RISK_HORIZON_MINUTES = 20;

/** Where the shipped coefficients were fitted, for the benchmarks' reports. */
export const SHIPPED_RISK_SOURCE =
  'all 25 single-node traces of ../shared/data, 20 min; features and fit chosen on leave-one-region-out and leave-one-period-out splits (npm run bench -- risk)';

/**
 * Risk coefficients the operator ships, in demo mode and on a cluster alike,
 * learned from every single-node trace of the project's data (AWS and GCP, 25
 * traces) at the 20-minute horizon, in the order of `RISK_FEATURES`. The feature set and the fit were
 * chosen by leaving one region, then one measurement period, out (the risk
 * benchmark reports those splits). Reproduce with:
 *
 *   npm run bench -- risk
 *
 * (`coefficients.byHorizon.20` of bench/results/risk.json). The large intercept
 * says that the measured traces are interrupted far more often than the advisor
 * bands of their types suggest (the band is an offset).
 */
export const SHIPPED_RISK_COEFFICIENTS: RiskCoefficients = {
  intercept: 8.3558,
  weights: [1, 0.0746, -0.1306, 0.0466, 1.1628, 0, -0.4346, 0.1644, -0.4052, -0.0208, -0.4794, 0.0037],
};
