export { startHostDaemon } from "./daemon.js";
export type { HostDaemon, HostDaemonOptions } from "./daemon.js";
export { chooseIsolation } from "./isolation.js";
export type { IsolationMode } from "./isolation.js";
export { HostTasks } from "./tasks.js";
export type { HostTaskInfo, HostTaskSummary } from "./tasks.js";
export { TaskRun, DEFAULT_TASK_CPUS, DEFAULT_TASK_MEM_MB } from "./task-run.js";
export type { Phase, ReportFn, RunContext } from "./task-run.js";
