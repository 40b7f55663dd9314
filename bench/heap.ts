import { parseResources } from "../src/resources/index.js";
import { createState, evolve, type ClusterState } from "../src/state/index.js";
import type { CorralEvent } from "../src/events/index.js";

function taskEvents(i: number, hosts: number, at: number): CorralEvent[] {
  const hostId = `h${i % hosts}`;
  const taskId = `task-${i}`;
  return [
    {
      type: "task.launched",
      v: 1,
      at,
      taskId,
      frameworkId: "f",
      hostId,
      role: "r",
      name: taskId,
      resources: parseResources("cpus:0.1;mem:128"),
      command: { value: "sleep 1", shell: true },
      offerId: "o",
    },
    {
      type: "task.status",
      v: 1,
      at,
      taskId,
      frameworkId: "f",
      hostId,
      state: "TASK_RUNNING",
      source: "host",
      uuid: `u-${i}`,
    },
    { type: "task.acknowledged", v: 1, at, taskId, frameworkId: "f", hostId, uuid: `u-${i}` },
  ];
}

function clusterOf(hosts: number, at: number): ClusterState {
  const state = createState();
  const hostRes = parseResources("cpus:800;mem:3276800");
  for (let h = 0; h < hosts; h++) {
    evolve(state, {
      type: "host.registered",
      v: 1,
      at,
      hostId: `h${h}`,
      hostname: `h${h}`,
      resources: hostRes,
      attributes: {},
      sim: true,
    });
  }
  evolve(state, {
    type: "framework.subscribed",
    v: 1,
    at,
    frameworkId: "f",
    name: "f",
    roles: ["r"],
    failoverTimeoutS: 0,
  });
  return state;
}

/**
 * Heap the master's folded state holds per live task (RUNNING, acknowledged), through the same
 * `evolve` the master uses: heap after full GCs, before and after folding `tasks` launches.
 * Also the fold's rate over pre-built events. Needs `node --expose-gc`.
 */
export function heapPerLiveTask(
  hosts = 1000,
  tasks = 100_000,
): { bytesPerTask: number; foldEventsPerS: number } | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return undefined;
  const at = Date.now();
  const state = clusterOf(hosts, at);
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < tasks; i++) for (const e of taskEvents(i, hosts, at)) evolve(state, e);
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  if (state.tasks.size !== tasks) throw new Error(`expected ${tasks} live tasks, folded ${state.tasks.size}`);

  const fresh = clusterOf(hosts, at);
  const events: CorralEvent[] = [];
  for (let i = 0; i < tasks; i++) events.push(...taskEvents(i, hosts, at));
  const t0 = performance.now();
  for (const e of events) evolve(fresh, e);
  const foldS = (performance.now() - t0) / 1000;
  return { bytesPerTask: (after - before) / tasks, foldEventsPerS: events.length / foldS };
}
