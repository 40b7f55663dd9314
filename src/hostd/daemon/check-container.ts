import { readFile, readdir, readlink } from "node:fs/promises";
import type { CheckContainer } from "../health/index.js";
import type { TaskCgroup } from "../isolation/index.js";
import { findTool, type Namespace } from "../launcher/index.js";

/** The /proc/<pid>/ns entry of each namespace, and the nsenter flag that enters it. */
const NS: Record<Namespace, { entry: string; flag: string }> = {
  mount: { entry: "mnt", flag: "--mount" },
  uts: { entry: "uts", flag: "--uts" },
  ipc: { entry: "ipc", flag: "--ipc" },
  net: { entry: "net", flag: "--net" },
  pid: { entry: "pid", flag: "--pid" },
};
// Inside the task's mount namespace the sandbox may hold volumes the host cannot see: change
// into it there (nsenter --wd would open the path on the host's side).
const ENTER_SANDBOX = 'cd -- "$0" || exit 126; exec "$@"';

const nsOf = (pid: number | "self", ns: Namespace): Promise<string | undefined> =>
  readlink(`/proc/${pid}/ns/${NS[ns].entry}`).catch(() => undefined);

/** Each live process's parent, from one pass over /proc. */
async function parents(): Promise<Map<number, number[]>> {
  const children = new Map<number, number[]>();
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => undefined);
    if (!stat) continue;
    // Fields after the command name (which may hold spaces and parentheses): state, ppid, ...
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  return children;
}

/**
 * The task's process that lives in all of its namespaces: the wrapper (`rootPid`) stays on the
 * host, `unshare` enters the new namespaces, and with a pid namespace only its forked child is
 * inside them all. Closest to the wrapper first; undefined when the task has none (left).
 */
export async function namespacedPid(
  rootPid: number,
  namespaces: ReadonlySet<Namespace>,
): Promise<number | undefined> {
  const own = new Map<Namespace, string | undefined>();
  for (const ns of namespaces) own.set(ns, await nsOf("self", ns));
  const children = await parents();
  const queue = [rootPid];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    let inside = true;
    for (const ns of namespaces) {
      const mine = await nsOf(pid, ns);
      if (mine === undefined || mine === own.get(ns)) inside = false;
    }
    if (inside) return pid;
    queue.push(...(children.get(pid) ?? []));
  }
  return undefined;
}

export interface CheckContainerSpec {
  /** The task's cgroup, when it is isolated. */
  cgroup: TaskCgroup | undefined;
  /** The task's wrapper (see launcher/wrapper.ts), parent of everything the task runs. */
  rootPid: number;
  namespaces: ReadonlySet<Namespace>;
  sandbox: string;
}

/**
 * Where the task's COMMAND health checks run (Mesos runs them inside the container): in its
 * cgroup, so their CPU and memory count against the task, and, when it has namespaces, inside
 * them through nsenter. Undefined for a task with neither: its checks run on the host as before.
 */
export function checkContainerOf(spec: CheckContainerSpec): CheckContainer | undefined {
  const { cgroup, namespaces } = spec;
  if (!cgroup && namespaces.size === 0) return undefined;
  let nsenter: string | undefined;
  const c: CheckContainer = {
    async prefix(): Promise<string[]> {
      if (namespaces.size === 0) return [];
      nsenter ??= await findTool("nsenter", "to run health checks in the task's namespaces");
      const target = await namespacedPid(spec.rootPid, namespaces);
      if (target === undefined)
        throw new Error(`no process of the task is in its namespaces (${[...namespaces].join(", ")})`);
      const flags = [...namespaces].map((ns) => NS[ns].flag);
      return [nsenter, "-t", String(target), ...flags, "--", "/bin/sh", "-c", ENTER_SANDBOX, spec.sandbox];
    },
  };
  if (cgroup) c.beforeExec = (pid) => cgroup.addProcess(pid);
  return c;
}
