import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { localPrincipal } from "../auth/index.js";
import { subjects, type OperatorCall } from "../events/index.js";
import { ErrorCode, TimeoutError, TransportError } from "../errors/index.js";
import { CredentialsError, natsConnectOptions, type ConnectAs } from "../natsauth/index.js";
import {
  cliAuth,
  cliIdentity,
  credsUsed,
  noCredentialsHint,
  noteConnectedWith,
  type CredsPurpose,
} from "./nats-access.js";
import { CallChannel, type CallBody } from "../rpc/index.js";

/** An operator call before it is given its callId. */
export type OperatorCallBody = CallBody<OperatorCall>;

/**
 * Connect for one CLI command, with the command line's credentials and TLS, or those `corral up`
 * made for this user for `purpose` (cli/nats-access.ts); when NATS cannot be reached or refuses
 * us, say so in one line, naming the credentials used or saying how to find some (exit code 1).
 */
export async function connectForCli(
  url: string,
  purpose: CredsPurpose = "operator",
  as: ConnectAs = {},
): Promise<NatsConnection | undefined> {
  try {
    const { options } = natsConnectOptions(
      { servers: url, ...cliAuth(purpose) },
      "corral-cli",
      undefined,
      as,
    );
    // nats.js counts the first connection's attempts against this: one try for each server.
    const servers = Array.isArray(options.servers) ? options.servers.length : 1;
    const nc = await connect({ ...options, maxReconnectAttempts: servers });
    noteConnectedWith(purpose);
    return nc;
  } catch (err) {
    const e = err as Error & { code?: string };
    const refused = e instanceof CredentialsError || /auth|permission|tls|certificate/i.test(e.message);
    const used = credsUsed(purpose);
    const why =
      e instanceof CredentialsError
        ? e.message
        : /authorization|authentication/i.test(e.message)
          ? used
            ? `${e.message}: the server refused the credentials of ${used}`
            : `${e.message}: ${noCredentialsHint(purpose)}`
          : e.message;
    process.stderr.write(
      refused
        ? `cannot connect to NATS at ${url}: ${why}\n`
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
  const who = cliIdentity("operator");
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
    channel.close(new TransportError(ErrorCode.Closed, "operator call finished"));
  }
}
