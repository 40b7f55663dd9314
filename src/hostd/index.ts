export {
  startSimHosts,
  simHostIds,
  type SimHostOptions,
  type SimHostPool,
  type SimHostStats,
} from "./sim.js";
export { parseBehaviour, parseScript, type SimBehaviour } from "./sim-behaviour.js";
