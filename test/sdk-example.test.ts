import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeDir, ROOT, stopUps, upCreds, startUpHere } from "./helpers/cli.js";

const run = promisify(execFile);
const TSC = join(ROOT, "node_modules/.bin/tsc");

/** The code block under "## A complete framework" in docs/sdk.md, exactly as a reader copies it. */
async function completeExample(): Promise<string> {
  const doc = await readFile(join(ROOT, "docs/sdk.md"), "utf8");
  const section = doc.slice(doc.indexOf("## A complete framework"));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m?.[1]) throw new Error("docs/sdk.md: no ts block under 'A complete framework'");
  return m[1];
}

/**
 * docs/sdk.md's complete framework, compiled on this Node with the commands its "Running it on
 * Node 20" section gives, and run against a real cluster: in a project of one's own (corral
 * linked as `npm install ../corral` links it) and inside the clone (where tsc needs --rootDir).
 */
describe("docs/sdk.md's complete framework", () => {
  let dataDir: string;
  let work: string;
  let url: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "corral-sdk-project-"));
    ({ dataDir, url } = await startUpHere("corral-sdk-example"));
  }, 60_000);

  afterAll(async () => {
    await stopUps();
    await removeDir(dataDir);
    await removeDir(work);
  });

  // As "Running it on Node 20" says: the credentials `corral up` made for the user who runs it.
  const env = () => ({
    ...process.env,
    NATS_URL: url,
    CORRAL_CREDS: upCreds(dataDir),
    TASKS: "3",
    ROLE: "*",
  });

  it(
    "compiles with tsc --init's defaults in a project of one's own and runs",
    { timeout: 90_000 },
    async () => {
      await writeFile(join(work, "package.json"), JSON.stringify({ name: "sleepers", type: "module" }));
      await mkdir(join(work, "node_modules/@types"), { recursive: true });
      await symlink(ROOT, join(work, "node_modules/corral"));
      await symlink(join(ROOT, "node_modules/@types/node"), join(work, "node_modules/@types/node"));
      await writeFile(join(work, "sleepers.ts"), await completeExample());
      await run(TSC, ["--init"], { cwd: work });
      await run(TSC, [], { cwd: work });
      const { stdout } = await run(process.execPath, ["sleepers.js"], {
        cwd: work,
        env: env(),
        timeout: 60_000,
      });
      expect(stdout).toMatch(/^subscribed as fw-/m);
      expect(stdout).toMatch(/^3 tasks finished$/m);
    },
  );

  it(
    "compiles inside the clone with --rootDir (plain tsc: TS2209) and runs",
    { timeout: 90_000 },
    async () => {
      const dir = await mkdtemp(join(ROOT, ".sdk-example-"));
      try {
        await writeFile(join(dir, "sleepers.ts"), await completeExample());
        const base = ["--module", "nodenext", "--target", "es2022", "--outDir", "out", "sleepers.ts"];
        const plain = await run(TSC, base, { cwd: dir }).then(
          () => "",
          (err: { stdout?: string }) => err.stdout ?? "",
        );
        expect(plain).toContain("TS2209");
        await run(TSC, ["--rootDir", ".", ...base], { cwd: dir });
        const { stdout } = await run(process.execPath, ["out/sleepers.js"], {
          cwd: dir,
          env: env(),
          timeout: 60_000,
        });
        expect(stdout).toMatch(/^3 tasks finished$/m);
      } finally {
        await removeDir(dir);
      }
    },
  );
});
