import { isTerminal } from "../events/index.js";
import { hostModeTable, hostTable, type HostLifecycleEvent, type HostModeEvent } from "./machines/index.js";
import { accumulate } from "./totals.js";
import type { ClusterState, HostView, TaskView } from "./types.js";

/** Hosts whose resources count towards the cluster total (the DRF denominator). */
export function counted(h: HostView): boolean {
  return h.status === "ACTIVE";
}

/** May the allocator offer this host's resources? Heard from, and not deactivated or draining. */
export function offerable(h: HostView): boolean {
  return h.status === "ACTIVE" && h.mode === "ACTIVE";
}

/** A host that is still part of the cluster (not marked gone or removed). */
export function isKnownHost(h: HostView | undefined): h is HostView {
  return h !== undefined && h.status !== "GONE" && h.status !== "REMOVED";
}

/**
 * Move a host's lifecycle through the host machine's table, keeping the DRF totals in step.
 * False (nothing changed) when the machine does not accept the event in the host's state.
 */
export function stepHost(state: ClusterState, h: HostView, event: HostLifecycleEvent): boolean {
  const next = hostTable.step(h.status, event);
  if (next === undefined || next === "NEW") return false;
  const was = counted(h);
  h.status = next;
  const is = counted(h);
  if (was && !is) accumulate(state.totals, h.total, -1);
  else if (!was && is) accumulate(state.totals, h.total, 1);
  return true;
}

/** Move a host's mode through the host-mode machine's table; false when it does not apply. */
export function stepMode(h: HostView, event: HostModeEvent): boolean {
  const next = hostModeTable.step(h.mode, event);
  if (next === undefined) return false;
  h.mode = next;
  return true;
}

/** The host's tasks that are not terminal (TASK_UNREACHABLE ones included). */
export function liveTasksOn(state: ClusterState, hostId: string): TaskView[] {
  const out: TaskView[] = [];
  for (const t of state.tasks.values()) if (t.hostId === hostId && !isTerminal(t.state)) out.push(t);
  return out;
}
