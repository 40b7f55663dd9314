import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encode, ensureStreams, subjects } from "../src/events/index.js";
import {
  defaultCredsFile,
  identity,
  issueCredential,
  natsConnectOptions,
  writeNatsConf,
} from "../src/natsauth/index.js";
import { startNatsServer, type NatsServerHandle } from "../src/natsd/index.js";

/**
 * TLS on loopback: a CA and a server certificate made here with openssl, a nats-server that
 * requires TLS (and, in the second server, client certificates), clients that trust the CA.
 */
const OPENSSL = "/usr/bin/openssl";
const haveOpenssl = existsSync(OPENSSL);
let dir: string;
const servers: NatsServerHandle[] = [];

function openssl(...args: string[]): void {
  execFileSync(OPENSSL, args, { cwd: dir, stdio: "pipe" });
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by the CA. */
function makeCertificates(): void {
  openssl("genrsa", "-out", "ca.key", "2048");
  openssl(
    "req",
    "-x509",
    "-new",
    "-key",
    "ca.key",
    "-days",
    "1",
    "-subj",
    "/CN=corral-test-ca",
    "-out",
    "ca.pem",
  );
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const who of ["server", "client"]) {
    openssl("genrsa", "-out", `${who}.key`, "2048");
    openssl("req", "-new", "-key", `${who}.key`, "-subj", `/CN=corral-${who}`, "-out", `${who}.csr`);
    openssl(
      "x509",
      "-req",
      "-in",
      `${who}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      `${who}.ext`,
      "-out",
      `${who}.pem`,
    );
  }
}

async function startTlsServer(name: string, verifyClients: boolean): Promise<NatsServerHandle> {
  const conf = writeNatsConf(join(dir, name), {
    storeDir: join(dir, name, "store"),
    listen: "127.0.0.1:-1",
    tls: {
      certFile: join(dir, "server.pem"),
      keyFile: join(dir, "server.key"),
      ...(verifyClients ? { caFile: join(dir, "ca.pem"), verifyClients: true } : {}),
    },
  });
  issueCredential(join(dir, name), identity("master", "m1"));
  const s = await startNatsServer({ configFile: conf, storeInConfig: true });
  servers.push(s);
  return s;
}

/** What a client that does not speak TLS gets: the server's INFO, then no PONG to its PING. */
function plaintextAttempt(url: string): Promise<{ info: string; rest: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(Number(port), hostname);
    let got = "";
    const done = () => {
      sock.destroy();
      const [info = "", ...rest] = got.split("\r\n");
      resolve({ info, rest: rest.join("\r\n") });
    };
    sock.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (got.startsWith("INFO") && got.includes("\r\n") && !sock.writableEnded) {
        sock.write('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n');
        sock.end();
      }
    });
    sock.on("error", () => done());
    sock.on("close", () => done());
    setTimeout(done, 3000).unref();
    sock.on("connect", () => undefined);
    sock.once("error", reject);
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "corral-tls-"));
  if (haveOpenssl) makeCertificates();
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!haveOpenssl)("TLS on loopback", () => {
  it("serves a client that trusts the CA, with credentials, and refuses plaintext and untrusting clients", async () => {
    const server = await startTlsServer("tls", false);
    const creds = defaultCredsFile(join(dir, "tls"), identity("master", "m1"));
    const { options } = natsConnectOptions(
      { servers: server.url, credsFile: creds, tls: { caFile: join(dir, "ca.pem") } },
      "tls-test",
      "master",
    );
    const nc = await connect({ ...options, maxReconnectAttempts: 0 });
    try {
      await ensureStreams(nc);
      const ack = await jetstream(nc).publish(subjects.master, encode([]));
      expect(ack.seq).toBe(1);
    } finally {
      await nc.close();
    }

    // No CA: the server's certificate is not trusted.
    const noCa = natsConnectOptions({ servers: server.url, credsFile: creds }, "tls-test").options;
    await expect(connect({ ...noCa, maxReconnectAttempts: 0, timeout: 3000 })).rejects.toThrow(
      /certificate/i,
    );

    // Plaintext: the server announces that TLS is required and never answers the PING.
    const plain = await plaintextAttempt(server.url);
    expect(plain.info).toMatch(/"tls_required":true/);
    expect(plain.rest).not.toContain("PONG");
  });

  it("with client verification, refuses a client without a certificate and serves one with", async () => {
    const server = await startTlsServer("mtls", true);
    const creds = defaultCredsFile(join(dir, "mtls"), identity("master", "m1"));
    const caOnly = natsConnectOptions(
      { servers: server.url, credsFile: creds, tls: { caFile: join(dir, "ca.pem") } },
      "mtls-test",
    ).options;
    // The server closes the handshake: an error or, with some OpenSSL versions, a timeout.
    await expect(connect({ ...caOnly, maxReconnectAttempts: 0, timeout: 3000 })).rejects.toThrow();
    const mutual = natsConnectOptions(
      {
        servers: server.url,
        credsFile: creds,
        tls: {
          caFile: join(dir, "ca.pem"),
          certFile: join(dir, "client.pem"),
          keyFile: join(dir, "client.key"),
        },
      },
      "mtls-test",
    ).options;
    const nc = await connect({ ...mutual, maxReconnectAttempts: 0 });
    await nc.flush();
    await nc.close();
  });
});
