import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { localPrincipal } from "../auth/index.js";
import { subjects, type OperatorCall } from "../events/index.js";
import { CorralError, ErrorCode, TimeoutError } from "../errors/index.js";
import { CredentialsError, natsConnectOptions } from "../natsauth/index.js";
import { cliAuth, cliIdentity } from "./nats-access.js";
import { CallChannel, type CallBody } from "../rpc/index.js";

/** An operator call before it is given its callId. */
export type OperatorCallBody = CallBody<OperatorCall>;

/**
 * Connect for one CLI command, with the command line's credentials and TLS (cli/nats-access.ts);
 * when NATS cannot be reached or refuses us, say so in one line (exit code 1).
 */
export async function connectForCli(url: string): Promise<NatsConnection | undefined> {
  try {
    const { options } = natsConnectOptions({ servers: url, ...cliAuth() }, "corral-cli");
    // nats.js counts the first connection's attempts against this: one try for each server.
    const servers = Array.isArray(options.servers) ? options.servers.length : 1;
    return await connect({ ...options, maxReconnectAttempts: servers });
  } catch (err) {
    const e = err as Error & { code?: string };
    const refused = e instanceof CredentialsError || /auth|permission|tls|certificate/i.test(e.message);
    process.stderr.write(
      refused
        ? `cannot connect to NATS at ${url}: ${e.message}\n`
        : `cannot reach NATS at ${url}: is \`corral up\` running? (use --nats URL)\n`,
    );
    process.exitCode = 1;
    return undefined;
  }
}

/**
 * Who is calling: the principal of the operator credentials given (`corral creds operator
 * <principal>`), else `$USER` (or the login name) as a subject token, "operator" when unknown.
 */
export function operatorPrincipal(): string {
  const who = cliIdentity();
  return who?.kind === "operator" ? who.id : localPrincipal();
}

/**
 * Send an operator call and wait for the master's answer: the call is stored in INPUTS on
 * `corral.in.op.<principal>` (its callId doubling as the JetStream message id), and the master
 * answers on the core-NATS inbox named in the `Corral-Reply` header (the SDK's CallChannel).
 * Resolves with the call's result; rejects with the master's error rebuilt by name, or a
 * TimeoutError that says what to check.
 */
export async function operatorCall(
  nc: NatsConnection,
  call: OperatorCallBody,
  timeoutMs = 10_000,
  principal = operatorPrincipal(),
): Promise<unknown> {
  const channel = new CallChannel<OperatorCallBody>(
    nc,
    jetstream(nc),
    subjects.operatorInput(principal),
    timeoutMs,
    undefined,
  );
  try {
    return await channel.send(call);
  } catch (err) {
    if (err instanceof TimeoutError) {
      throw new TimeoutError(`${err.message}: is a master running? (has one ever run on this NATS server?)`, {
        cause: err,
      });
    }
    throw err;
  } finally {
    channel.close(new CorralError(ErrorCode.Closed, "operator call finished"));
  }
}
