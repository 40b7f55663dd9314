import { parseArgs } from "node:util";
import { heapPerLiveTask } from "./heap.js";
import { launchBench } from "./launch.js";
import { throughput } from "./throughput.js";

/**
 * `npm run bench`: prints figures, asserts nothing. Each figure stands beside the raw limit
 * measured in the same run, because these machines are shared and noisy.
 */
const { values } = parseArgs({
  options: {
    hosts: { type: "string", default: "1000" },
    frameworks: { type: "string", default: "10" },
    roles: { type: "string", default: "5" },
    tasks: { type: "string", default: "100000" },
    "task-command": { type: "string", default: "sleep 1" },
    timeout: { type: "string", default: "300" },
    /** "default" (heap + simulated-host throughput), "launch" (real host, cgroups) or "all". */
    mode: { type: "string", default: "default" },
    "launch-tasks": { type: "string", default: "1000" },
    "launch-concurrency": { type: "string", default: "50" },
  },
});
const mode = values.mode;
if (mode !== "default" && mode !== "launch" && mode !== "all") {
  console.error(`unknown --mode ${mode}: use default, launch or all`);
  process.exit(2);
}

const fmt = (n: number, d = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d })
    : "n/a";

async function runDefault(): Promise<void> {
  const heap = heapPerLiveTask(1000, 100_000);
  console.log("== master state heap (1,000 hosts, 100,000 live tasks, folded with the master's evolve) ==");
  if (heap) {
    console.log(`heap per live task        ${fmt(heap.bytesPerTask)} B   (target < 2,048 B)`);
    console.log(`fold rate                 ${fmt(heap.foldEventsPerS)} events/s`);
  } else {
    console.log("skipped: run with node --expose-gc");
  }

  const o = {
    hosts: Number(values.hosts),
    frameworks: Number(values.frameworks),
    roles: Number(values.roles),
    tasks: Number(values.tasks),
    hostResources: "cpus:8;mem:32768",
    taskResources: "cpus:0.1;mem:128",
    taskCommand: values["task-command"],
    timeoutS: Number(values.timeout),
  };
  console.log(
    `\n== launch throughput: ${o.hosts} simulated hosts (${o.hostResources}), ${o.frameworks} frameworks in ${o.roles} roles, ${o.tasks} tasks (${o.taskResources}, "${o.taskCommand}") ==`,
  );
  const r = await throughput(o);
  console.log(
    `tasks RUNNING / FINISHED  ${fmt(r.tasksRunning)} / ${fmt(r.tasksFinished)} in ${fmt(r.wallS, 1)} s (rejected calls: ${r.rejectedCalls})`,
  );
  console.log(`tasks reaching RUNNING/s  ${fmt(r.runningPerS)}   (target >= 5,000)`);
  console.log(`tasks finished/s          ${fmt(r.finishedPerS)}`);
  console.log(
    `offer -> RUNNING          p50 ${fmt(r.offerToRunningP50Ms, 1)} ms, p99 ${fmt(r.offerToRunningP99Ms, 1)} ms`,
  );
  console.log(
    `events appended/s         ${fmt(r.eventsAppendedPerS)} in ${fmt(r.messagesAppendedPerS)} messages/s (mean ${fmt(r.meanMessageBytes)} B)`,
  );
  console.log(
    `raw JetStream publish/s   ${fmt(r.rawPublishPerS)} acked messages of ${fmt(r.meanMessageBytes)} B (${fmt(r.rawMBPerS, 1)} MB/s), same client, same run`,
  );
  console.log(`appended messages / raw   ${fmt((100 * r.messagesAppendedPerS) / r.rawPublishPerS, 1)} %`);
}

async function runLaunch(): Promise<void> {
  const r = await launchBench({
    tasks: Number(values["launch-tasks"]),
    concurrency: Number(values["launch-concurrency"]),
    timeoutS: Number(values.timeout),
  });
  console.log(
    `\n== launches through a real host: ${r.tasks} tasks ("true"), up to ${r.concurrency} at once, cgroup ${r.cgroupVersion} ==`,
  );
  console.log(
    `raw cgroup+spawn          ${fmt(r.raw.launchesPerS)} launches/s (${r.raw.finished} in ${fmt(r.raw.wallS, 2)} s, failed ${r.raw.failed}, exited before added ${r.raw.exitedBeforeAdded})`,
  );
  console.log(`raw per launch            p50 ${fmt(r.raw.p50Ms, 1)} ms, p99 ${fmt(r.raw.p99Ms, 1)} ms`);
  console.log(
    `corral launches/s         ${fmt(r.corral.launchesPerS)}   (target >= 200; ${r.corral.finished} FINISHED, ${r.corral.failed} failed, in ${fmt(r.corral.wallS, 2)} s, ${r.corral.accepts} accepts)`,
  );
  console.log(
    `ACCEPT -> TASK_RUNNING    p50 ${fmt(r.corral.runningP50Ms, 1)} ms, p99 ${fmt(r.corral.runningP99Ms, 1)} ms`,
  );
  console.log(`ACCEPT -> TASK_FINISHED   p50 ${fmt(r.corral.p50Ms, 1)} ms, p99 ${fmt(r.corral.p99Ms, 1)} ms`);
  console.log(`corral / raw launches/s   ${fmt(r.ratio, 2)}   (target >= 0.5, i.e. within 2x)`);
}

if (mode === "default" || mode === "all") await runDefault();
if (mode === "launch" || mode === "all") await runLaunch();
process.exit(0);
