export { startHostDaemon } from "./daemon.js";
export type { HostDaemon, HostDaemonOptions } from "./daemon.js";
export { chooseIsolation } from "./isolation.js";
export type { IsolationMode } from "./isolation.js";
export { HostTasks } from "./tasks.js";
export type { HostTaskInfo, HostTaskSummary } from "./tasks.js";
export { TaskRun, DEFAULT_TASK_CPUS, DEFAULT_TASK_MEM_MB } from "./task-run.js";
export type { Phase, RunContext, RunOrigin, SendFn } from "./task-run.js";
export { Checkpoints } from "./checkpoint.js";
export type { CheckpointedRun, RunRecord } from "./checkpoint.js";
export {
  startLogsService,
  logsSubject,
  frameworkLogsSubject,
  DEFAULT_LOG_CHUNK,
  MAX_LOG_CHUNK,
} from "./logs-service.js";
export type { LogsRequest, LogsReply, LogsService, LogsServiceOptions } from "./logs-service.js";
