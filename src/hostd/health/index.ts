export type { HealthChecker, HealthCheckerOptions, HealthResult } from "./checker.js";
export { startHealthChecker } from "./checker.js";
export type { Probe, ProbeOptions, ProbeResult } from "./probes.js";
export type { CheckContainer } from "./command.js";
export { startProbe } from "./probes.js";
export type { HealthCheckSpec, NormalizedHealthCheck } from "./spec.js";
export {
  DEFAULT_HEALTHY_STATUSES,
  HEALTH_CHECK_DEFAULTS,
  InvalidHealthCheckError,
  validateHealthCheck,
} from "./spec.js";
