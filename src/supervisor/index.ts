export { Supervisor, defaultWorkerUrl, type SupervisorOptions } from "./supervisor.js";
export {
  describeChild,
  type BackoffOptions,
  type ChildSpec,
  type ChildState,
  type ChildStatus,
} from "./child.js";
export { repoNatsConf, startLocalNats } from "./local-nats.js";
export { Broadcast, type SupervisorNotification } from "./notifications.js";
export {
  components,
  isComponentName,
  type ComponentContext,
  type ComponentHandle,
  type ComponentName,
  type ComponentOptions,
  type MasterComponentOptions,
  type SimHostsComponentOptions,
  type TestCrashComponentOptions,
} from "./components.js";
export { serveUntilSignal, type ServeOptions } from "./service.js";
export {
  WorkerExitedError,
  fromWire,
  toWire,
  type WireError,
  type WorkerMessage,
  type WorkerRequest,
} from "./protocol.js";
