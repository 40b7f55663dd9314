import { mkdirSync, rmSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import type { CorralEvent } from "../../events/index.js";
import type { Logger } from "../../log/index.js";
import { validateRole, type Resource, type Resources } from "../../resources/index.js";
import { LaunchError, type VolumeSpec } from "../launcher/index.js";

/**
 * Persistent volumes on the host (Mesos persistent-volume.md): each is a directory
 * `<workDir>/volumes/roles/<role>/<id>`, made when the volume is created (or first used), bind-mounted
 * into every task that holds the volume among its resources, kept when tasks end, fail or the
 * daemon restarts, and deleted only when the volume is destroyed.
 */
const VOLUME_ID_RE = /^[A-Za-z0-9_.-]{1,128}$/;

export function volumesRoot(workDir: string): string {
  return join(resolve(workDir), "volumes", "roles");
}

/** The directory of a volume resource; throws LaunchError for an id or role that could escape. */
export function volumeDir(workDir: string, r: Resource): string {
  const id = r.disk?.persistence.id ?? "";
  if (!VOLUME_ID_RE.test(id) || id === "." || id === "..")
    throw new LaunchError("INVALID_VOLUME", `volume id ${JSON.stringify(id)} is not a usable directory name`);
  if (r.role === "*" || validateRole(r.role) !== undefined)
    throw new LaunchError("INVALID_VOLUME", `volume ${id} has an invalid role ${JSON.stringify(r.role)}`);
  const root = volumesRoot(workDir);
  const dir = join(root, ...r.role.split("/"), id);
  if (!dir.startsWith(root + sep)) throw new LaunchError("PATH_ESCAPE", `volume ${id} escapes ${root}`);
  return dir;
}

/** The task's persistent volumes as launcher bind mounts; their directories exist afterwards. */
export function persistentMounts(workDir: string, resources: Resources): VolumeSpec[] {
  const out: VolumeSpec[] = [];
  for (const r of resources) {
    if (!r.disk) continue;
    const hostPath = volumeDir(workDir, r);
    mkdirSync(hostPath, { recursive: true, mode: 0o755 });
    out.push({
      hostPath,
      containerPath: r.disk.volume.containerPath,
      mode: r.disk.volume.mode === "RO" ? "ro" : "rw",
    });
  }
  return out;
}

/** The task's volumes with their sizes, for the disk-quota watcher. */
export function volumeQuotas(
  workDir: string,
  resources: Resources,
): Array<{ id: string; dir: string; sizeMb: number }> {
  const out: Array<{ id: string; dir: string; sizeMb: number }> = [];
  for (const r of resources)
    if (r.disk && "scalar" in r)
      out.push({ id: r.disk.persistence.id, dir: volumeDir(workDir, r), sizeMb: r.scalar });
  return out;
}

/**
 * Act on a volume event addressed to this host: a created volume gets its directory, a destroyed
 * one loses it with its data. Returns true when the event was one of these.
 */
export function onVolumeEvent(workDir: string, e: CorralEvent, log: Logger): boolean {
  if (e.type !== "volume.created" && e.type !== "volume.destroyed") return false;
  const list = e.type === "volume.created" ? e.to : e.from;
  for (const r of list) {
    if (!r.disk) continue;
    try {
      const dir = volumeDir(workDir, r);
      if (e.type === "volume.created") {
        mkdirSync(dir, { recursive: true, mode: 0o755 });
        log.info({ volume: r.disk.persistence.id, role: r.role, dir }, "persistent volume created");
      } else {
        rmSync(dir, { recursive: true, force: true });
        log.info(
          { volume: r.disk.persistence.id, role: r.role, dir },
          "persistent volume destroyed: data deleted",
        );
      }
    } catch (err) {
      log.error({ err, volume: r.disk.persistence.id }, `could not act on ${e.type}`);
    }
  }
  return true;
}
