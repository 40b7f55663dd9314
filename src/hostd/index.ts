export {
  startSimHosts,
  simHostIds,
  type SimHostOptions,
  type SimHostPool,
  type SimHostStats,
} from "./sim.js";
export { parseBehaviour, parseScript, type SimBehaviour } from "./sim-behaviour.js";
export { discoverResources, hostIdFor, parseAttributes, DiscoveryError, DEFAULT_PORTS } from "./discovery.js";
