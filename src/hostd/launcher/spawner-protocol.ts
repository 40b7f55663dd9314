/**
 * Messages between a host daemon and its spawner process (see spawner.ts). Plain JSON over the
 * child's IPC channel; `id` names one spawn request for its whole life.
 */
export interface SpawnArgs {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Files the process's stdout and stderr are appended to (created 0644 when absent). */
  stdout: string;
  stderr: string;
}

export type ToSpawner =
  | ({ t: "spawn"; id: number } & SpawnArgs)
  /** Open the gate: the process may exec its command. */
  | { t: "go"; id: number }
  /** Close the gate without a go-ahead: the wrapper exits without running the command. */
  | { t: "cancel"; id: number };

export type FromSpawner =
  | { t: "spawned"; id: number; pid: number }
  | { t: "failed"; id: number; message: string }
  | { t: "exit"; id: number; code: number | null; signal: NodeJS.Signals | null };
