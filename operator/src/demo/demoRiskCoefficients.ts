import { BAND_ONLY_COEFFICIENTS, RiskCoefficients } from '../core/risk';

/** Risk coefficients demo mode uses: placeholder until fitted on the shipped traces. */
export const DEMO_RISK_COEFFICIENTS: RiskCoefficients = BAND_ONLY_COEFFICIENTS;
