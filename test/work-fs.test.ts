import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { journalLessExt4, workDirOnJournalLessExt4 } from "../src/hostd/daemon/work-fs.js";

/** Telling a work dir on an ext4 without a journal, where inode churn slows launches down. */

const MOUNTINFO = [
  "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard",
  "25 22 0:21 / /dev/shm rw,relatime shared:3 - tmpfs tmpfs rw,size=24683772k",
  "40 22 8:17 / /srv/data rw,relatime shared:9 - ext4 /dev/sdb1 rw,data=ordered",
  "41 22 8:33 / /srv/my\\040disk rw,relatime shared:10 - xfs /dev/sdc1 rw",
].join("\n");

describe("journalLessExt4", () => {
  it("names the device of an ext4 that has no jbd2 journal, for a dir anywhere below it", () => {
    expect(journalLessExt4(MOUNTINFO, [], "/var/tmp/corral")).toEqual({ device: "vda", mountPoint: "/" });
    expect(journalLessExt4(MOUNTINFO, ["sdb1-8"], "/var/tmp/corral")).toEqual({
      device: "vda",
      mountPoint: "/",
    });
  });

  it("says nothing of a journaled ext4, tmpfs or another file system: the longest mount point wins", () => {
    expect(journalLessExt4(MOUNTINFO, ["vda-8"], "/var/tmp/corral")).toBeUndefined();
    expect(journalLessExt4(MOUNTINFO, ["sdb1-8"], "/srv/data/hostd")).toBeUndefined();
    expect(journalLessExt4(MOUNTINFO, [], "/dev/shm/hostd")).toBeUndefined();
    expect(journalLessExt4(MOUNTINFO, [], "/srv/my disk/hostd")).toBeUndefined();
    // /srv/database is not below /srv/data.
    expect(journalLessExt4(MOUNTINFO, ["sdb1-8"], "/srv/database")).toEqual({
      device: "vda",
      mountPoint: "/",
    });
  });

  it("agrees with this machine's own /proc", async () => {
    const found = await workDirOnJournalLessExt4("/var/tmp");
    const mountinfo = readFileSync("/proc/self/mountinfo", "utf8");
    const journals = existsSync("/proc/fs/jbd2") ? readdirSync("/proc/fs/jbd2") : [];
    expect(found).toEqual(journalLessExt4(mountinfo, journals, "/var/tmp"));
    if (found) expect(journals.some((j) => j.startsWith(`${found.device}-`))).toBe(false);
  });
});
