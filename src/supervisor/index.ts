export {
  Supervisor,
  defaultWorkerUrl,
  type BackoffOptions,
  type ChildSpec,
  type ChildState,
  type ChildStatus,
  type SupervisorOptions,
} from "./supervisor.js";
export { Broadcast, type SupervisorNotification } from "./notifications.js";
export {
  components,
  isComponentName,
  parseAttributes,
  type ComponentContext,
  type ComponentHandle,
  type ComponentName,
  type ComponentOptions,
  type MasterComponentOptions,
  type SimHostsComponentOptions,
  type TestCrashComponentOptions,
} from "./components.js";
export { WorkerExitedError, fromWire, toWire, type WireError, type WorkerMessage, type WorkerRequest } from "./protocol.js";
