import { FRAMEWORK_LIFECYCLE_EVENTS, frameworkMachine } from "./framework.js";
import { HOST_LIFECYCLE_EVENTS, hostMachine } from "./host.js";
import { HOST_MODE_EVENTS, hostModeMachine } from "./host-mode.js";
import { OFFER_LIFECYCLE_EVENTS, offerMachine } from "./offer.js";
import { compileTable } from "./table.js";
import { TASK_LIFECYCLE_EVENTS, taskMachine } from "./task.js";

export { compileTable } from "./table.js";
export type { MachineEventOf, MachineStateOf, TransitionTable } from "./table.js";

export { taskMachine, TASK_LIFECYCLE_EVENTS } from "./task.js";
export type { TaskLifecycleEvent, TaskLifecycleState, TaskMachineEvent } from "./task.js";
export { hostMachine, HOST_LIFECYCLE_EVENTS } from "./host.js";
export type { HostLifecycleEvent, HostLifecycleState, HostMachineEvent } from "./host.js";
export { hostModeMachine, HOST_MODE_EVENTS } from "./host-mode.js";
export type { HostModeEvent, HostModeState, HostModeMachineEvent } from "./host-mode.js";
export { frameworkMachine, FRAMEWORK_LIFECYCLE_EVENTS } from "./framework.js";
export type { FrameworkLifecycleEvent, FrameworkLifecycleState, FrameworkMachineEvent } from "./framework.js";
export { offerMachine, OFFER_LIFECYCLE_EVENTS } from "./offer.js";
export type { OfferLifecycleEvent, OfferLifecycleState, OfferMachineEvent } from "./offer.js";

/** Compiled once at module load; the fold steps these instead of running the machines. */
export const taskTable = compileTable(taskMachine, TASK_LIFECYCLE_EVENTS);
export const hostTable = compileTable(hostMachine, HOST_LIFECYCLE_EVENTS);
export const hostModeTable = compileTable(hostModeMachine, HOST_MODE_EVENTS);
export const frameworkTable = compileTable(frameworkMachine, FRAMEWORK_LIFECYCLE_EVENTS);
export const offerTable = compileTable(offerMachine, OFFER_LIFECYCLE_EVENTS);
