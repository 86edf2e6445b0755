/**
 * Interruption risk is the chance a spot pool is reclaimed within the
 * operator's prediction horizon. These bands are how the portal words it;
 * the operator decides with the number itself.
 */
export const RISK_MEDIUM_FROM = 0.05;
/** See {@link RISK_MEDIUM_FROM}. */
export const RISK_HIGH_FROM = 0.2;

/** How a person reads a risk. */
export type RiskLevel = 'low' | 'medium' | 'high';

/** The band a risk falls in. */
export function riskLevel(risk: number): RiskLevel {
  if (risk >= RISK_HIGH_FROM) return 'high';
  if (risk >= RISK_MEDIUM_FROM) return 'medium';
  return 'low';
}

/** The MUI palette colour of a band. */
export function riskColor(level: RiskLevel): 'success' | 'warning' | 'error' {
  if (level === 'high') return 'error';
  if (level === 'medium') return 'warning';
  return 'success';
}
