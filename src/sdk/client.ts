import { jetstream } from "@nats-io/jetstream";
import { connect, nuid, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  LogTrust,
  LogVerifier,
  PARTITION_AWARE,
  SUBJECT_ID,
  subjects,
  type FrameworkCall,
} from "../events/index.js";
import { waitForLog } from "../events/wait-log.js";
import { ErrorCode, TimeoutError, TransportError, ValidationError } from "../errors/index.js";
import { CredentialsError, natsConnectOptions, readCredential } from "../natsauth/index.js";
import { AckBatcher } from "./acks.js";
import { statusesFromWire, toOperations } from "./convert.js";
import { Feeds } from "./feeds.js";
import { CallChannel, type CallBody } from "../rpc/index.js";
import type {
  Filters,
  FrameworkOptions,
  InverseOffer,
  LaunchTask,
  Notification,
  Offer,
  Operation,
  ReconcileTask,
  TaskStatus,
} from "./types.js";
import { DEFAULT_HEARTBEAT_INTERVAL_MS, Heartbeat } from "./heartbeat.js";

/** A subscribed framework: the Mesos v1 scheduler API over Corral's streams (see docs/sdk.md). */
export interface FrameworkClient {
  readonly frameworkId: string;
  /**
   * This running instance of the framework. Another instance that subscribes with the same
   * framework id (a scheduler failover) ends this one: it gets a `framework.failed_over`
   * notification and closes, as Mesos closes the old scheduler's connection.
   */
  readonly instanceId: string;
  /** Outstanding offers in arrival order (an offer rescinded before it is read is skipped). */
  offers(): AsyncIterable<Offer>;
  /** Task status updates, at least once: acknowledge each one that has a uuid. */
  updates(): AsyncIterable<TaskStatus>;
  notifications(): AsyncIterable<Notification>;
  /** Use offers (all from one host): a bare task list means one LAUNCH of them all. */
  accept(offerIds: string[], operations: Operation[] | LaunchTask[], filters?: Filters): Promise<void>;
  decline(offerIds: string[], filters?: Filters): Promise<void>;
  revive(roles?: string[]): Promise<void>;
  suppress(roles?: string[]): Promise<void>;
  kill(taskId: string, gracePeriodS?: number): Promise<void>;
  /** Batched: resolves when the ACKNOWLEDGE call carrying this ack is answered. */
  acknowledge(update: TaskStatus): Promise<void>;
  /**
   * Ask the master for the latest state of these tasks (all of the framework's when omitted).
   * Naming a task's host lets the master answer better for a task it does not know.
   */
  reconcile(tasks?: Array<string | ReconcileTask>): Promise<TaskStatus[]>;
  /** Remove the framework: its tasks are killed and its offers rescinded. */
  teardown(): Promise<void>;
  /** Received and neither accepted, declined nor rescinded. */
  isOutstanding(offerId: string): boolean;
  /** Requests for hosts back (maintenance), in arrival order; answered or rescinded ones are skipped. */
  inverseOffers(): AsyncIterable<InverseOffer>;
  /** The framework will be off these hosts in time (Mesos ACCEPT_INVERSE_OFFERS). */
  acceptInverseOffers(inverseOfferIds: string[], filters?: Filters): Promise<void>;
  /** It will not: the master asks again after `filters.refuseSeconds` (Mesos DECLINE_INVERSE_OFFERS). */
  declineInverseOffers(inverseOfferIds: string[], filters?: Filters): Promise<void>;
  /** Stop reading, reject pending calls with a Closed error, end the iterators. */
  close(): Promise<void>;
}

/**
 * How long a call waits for its answer. Longer than a master failover at the default lease TTL
 * (10 s: the lease lapses up to a TTL after the leader's last renewal, then the standby takes
 * over in milliseconds and answers the calls waiting in INPUTS), so a call in flight when the
 * leader dies is answered by its successor rather than timing out (docs/operations.md).
 */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/** How long connectFramework waits for a master to make the log (FrameworkOptions.waitForLogMs). */
export const DEFAULT_WAIT_FOR_LOG_MS = 60_000;
const ID_RE = new RegExp(SUBJECT_ID);

/** Connect (unless `opts.nc` is given), subscribe the framework, and return its client. */
export async function connectFramework(opts: FrameworkOptions): Promise<FrameworkClient> {
  if (!opts.name) throw new ValidationError(ErrorCode.InvalidCall, "a framework needs a name");
  if (opts.logPublicKeys?.length) LogTrust.of(opts.logPublicKeys); // a bad key fails before connecting
  // Credentials: a framework's name the framework; an operator's that may run frameworks (the
  // local user's, made by `corral up`) run one under a new id.
  const credsFile = opts.nc ? undefined : (opts.credsFile ?? (process.env.CORRAL_CREDS || undefined));
  const given = credsFile ? readCredential(credsFile) : undefined;
  const credentialed = given?.who.kind === "framework" ? given.who.id : undefined;
  const frameworkId = opts.frameworkId ?? credentialed ?? `fw-${nuid.next()}`;
  if (!ID_RE.test(frameworkId)) {
    throw new ValidationError(
      ErrorCode.InvalidCall,
      `framework id "${frameworkId}" must match ${SUBJECT_ID}`,
    );
  }
  if (credentialed !== undefined && frameworkId !== credentialed)
    throw new CredentialsError(
      `the credentials are framework ${credentialed}'s: they cannot subscribe framework ${frameworkId}`,
    );
  const access = opts.nc
    ? undefined
    : natsConnectOptions(
        {
          servers: opts.servers,
          ...(credsFile ? { credsFile } : {}),
          ...(opts.tls ? { tls: opts.tls } : {}),
        },
        `corral-framework:${opts.name}`,
        ["framework", "operator"],
        given?.who.kind === "operator" ? { asFramework: frameworkId } : {},
      );
  const nc = opts.nc ?? (await connect({ ...access?.options, maxReconnectAttempts: -1 }));
  try {
    // Started before any master: wait (saying so, once) until one has made the log.
    const waitMs = opts.waitForLogMs ?? DEFAULT_WAIT_FOR_LOG_MS;
    await waitForLog(nc, {
      log: opts.logger?.child({ component: "sdk", frameworkId }),
      signal: opts.signal,
      ...(Number.isFinite(waitMs) ? { timeoutMs: waitMs } : {}),
      who: `framework ${opts.name}`,
    });
  } catch (err) {
    if (!opts.nc) await nc.close().catch(() => undefined);
    throw err;
  }
  const client = new Client(nc, opts.nc === undefined, opts, frameworkId);
  try {
    await client.start();
  } catch (err) {
    await client.close();
    throw err;
  }
  return client;
}

const withFilters = (f?: Filters) =>
  f?.refuseSeconds !== undefined ? { filters: { refuseSeconds: f.refuseSeconds } } : {};

class Client implements FrameworkClient {
  private readonly rpc: CallChannel<CallBody<FrameworkCall>>;
  private readonly acks: AckBatcher;
  private readonly feeds: Feeds;

  /**
   * Offers and updates are checked against the cluster's log keys. Without them the SDK says so
   * at info, not warn: `corral run --quiet` must print only the task's output (docs/sdk.md).
   */
  private verifier(): LogVerifier {
    const keys = this.opts.logPublicKeys;
    if (!keys?.length)
      this.log?.info("no logPublicKeys: the signatures of offers and updates are not checked");
    const trust = keys?.length ? LogTrust.of(keys) : undefined;
    return new LogVerifier({
      trust,
      mode: "signature",
      warnUnchecked: false,
      ...(this.log ? { logger: this.log } : {}),
    });
  }
  private readonly log: Logger | undefined;
  private readonly heartbeat: Heartbeat;
  private closing: Promise<void> | undefined;
  private resubscribing: Promise<void> | undefined;
  /** This running instance; a later SUBSCRIBE of the framework by another instance ends this one. */
  readonly instanceId = nuid.next();

  constructor(
    private readonly nc: NatsConnection,
    private readonly ownsNc: boolean,
    private readonly opts: FrameworkOptions,
    readonly frameworkId: string,
  ) {
    const js = jetstream(nc);
    this.log = opts.logger?.child({ component: "sdk", frameworkId });
    const timeout = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.rpc = new CallChannel(nc, js, subjects.frameworkInput(frameworkId), timeout, this.log);
    this.feeds = new Feeds(
      nc,
      js,
      frameworkId,
      this.log,
      (id, code, msg) => this.rpc.rejectFromEvent(id, code, msg),
      {
        partitionAware: opts.partitionAware === true,
        onDisconnected: () => void this.resubscribe(),
        instanceId: this.instanceId,
        // The new instance owns the framework now: stop heartbeating for it and close.
        onFailedOver: () => void this.close(),
        verifier: this.verifier(),
      },
    );
    this.heartbeat = new Heartbeat(
      nc,
      frameworkId,
      opts.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    );
    this.acks = new AckBatcher(
      (acks) => this.rpc.send({ type: "ACKNOWLEDGE", frameworkId, acks }),
      (acks) => this.feeds.acknowledged(acks.map((a) => a.uuid)),
      this.log,
    );
  }

  async start(): Promise<void> {
    await this.feeds.open();
    // Updates still awaiting acknowledgement come first, then the live stream.
    const unacknowledged = await this.subscribe();
    await this.feeds.start();
    this.heartbeat.start();
    void this.nc.closed().then(() => this.close());
    this.log?.info({ roles: this.opts.roles ?? ["*"], unacknowledged }, "framework subscribed");
  }

  /** SUBSCRIBE (again), queueing the unacknowledged updates it returns; resolves to their count. */
  private async subscribe(): Promise<number> {
    const o = this.opts;
    const result = await this.rpc.send({
      type: "SUBSCRIBE",
      frameworkId: this.frameworkId,
      name: o.name,
      roles: o.roles ?? ["*"],
      failoverTimeoutS: o.failoverTimeoutS ?? 0,
      ...(o.principal !== undefined ? { principal: o.principal } : {}),
      ...(o.partitionAware ? { capabilities: [PARTITION_AWARE] } : {}),
      instanceId: this.instanceId,
    });
    const r = (result ?? {}) as { frameworkId?: unknown; unacknowledged?: unknown };
    if (typeof r.frameworkId === "string" && r.frameworkId !== this.frameworkId) {
      const msg = `the master subscribed ${r.frameworkId}, not ${this.frameworkId}`;
      throw new ValidationError(ErrorCode.InvalidCall, msg);
    }
    const unacknowledged = statusesFromWire(r.unacknowledged, this.frameworkId);
    for (const s of unacknowledged) this.feeds.pushUpdate(s);
    return unacknowledged.length;
  }

  /**
   * The master disconnected us (we were silent too long: a partition, a stalled event loop) but
   * this client still runs: subscribe again, as Mesos's scheduler driver does on a new connection.
   */
  private resubscribe(): Promise<void> {
    if (this.closing || this.resubscribing) return this.resubscribing ?? Promise.resolve();
    this.resubscribing = this.subscribe()
      .then((unacknowledged) => {
        this.log?.info({ unacknowledged }, "framework subscribed again");
        this.feeds.notes.push({ type: "framework.resubscribed", unacknowledged });
      })
      .catch((err: unknown) => this.log?.error({ err }, "subscribing again failed"))
      .finally(() => (this.resubscribing = undefined));
    return this.resubscribing;
  }

  offers(): AsyncIterable<Offer> {
    return this.feeds.outstandingOffers();
  }

  updates(): AsyncIterable<TaskStatus> {
    return this.feeds.updates;
  }

  notifications(): AsyncIterable<Notification> {
    return this.feeds.notes;
  }

  async accept(offerIds: string[], operations: Operation[] | LaunchTask[], filters?: Filters): Promise<void> {
    const ops = toOperations(operations);
    const frameworkId = this.frameworkId;
    await this.using(offerIds, () =>
      this.rpc.send({ type: "ACCEPT", frameworkId, offerIds, operations: ops, ...withFilters(filters) }),
    );
  }

  async decline(offerIds: string[], filters?: Filters): Promise<void> {
    const frameworkId = this.frameworkId;
    // A decline that failed is not offered again: the framework did not want the offer.
    await this.using(
      offerIds,
      () => this.rpc.send({ type: "DECLINE", frameworkId, offerIds, ...withFilters(filters) }),
      false,
    );
  }

  async revive(roles?: string[]): Promise<void> {
    await this.rpc.send({ type: "REVIVE", frameworkId: this.frameworkId, ...(roles ? { roles } : {}) });
  }

  async suppress(roles?: string[]): Promise<void> {
    await this.rpc.send({ type: "SUPPRESS", frameworkId: this.frameworkId, ...(roles ? { roles } : {}) });
  }

  async kill(taskId: string, gracePeriodS?: number): Promise<void> {
    const grace = gracePeriodS !== undefined ? { gracePeriodS } : {};
    await this.rpc.send({ type: "KILL", frameworkId: this.frameworkId, taskId, ...grace });
  }

  acknowledge(update: TaskStatus): Promise<void> {
    if (!update.uuid) return Promise.resolve();
    return this.acks.add({ taskId: update.taskId, uuid: update.uuid });
  }

  async reconcile(tasks?: Array<string | ReconcileTask>): Promise<TaskStatus[]> {
    const named = (tasks ?? []).map((t) => (typeof t === "string" ? { taskId: t } : t));
    const body: CallBody<FrameworkCall> = {
      type: "RECONCILE",
      frameworkId: this.frameworkId,
      ...(named.length > 0 ? { tasks: named } : {}),
    };
    const result = (await this.rpc.send(body)) as { statuses?: unknown } | undefined;
    const statuses = statusesFromWire(result?.statuses, this.frameworkId);
    for (const s of statuses) this.feeds.updates.push(s);
    return statuses;
  }

  async teardown(): Promise<void> {
    // Acknowledgements made before the teardown go first: after it the master refuses them.
    await this.acks.flush();
    this.feeds.tearingDown = true;
    await this.rpc.send({ type: "TEARDOWN", frameworkId: this.frameworkId });
  }

  isOutstanding(offerId: string): boolean {
    return this.feeds.outstanding.has(offerId) && !this.feeds.claimed.has(offerId);
  }

  inverseOffers(): AsyncIterable<InverseOffer> {
    return this.feeds.outstandingInverseOffers();
  }

  async acceptInverseOffers(inverseOfferIds: string[], filters?: Filters): Promise<void> {
    for (const id of inverseOfferIds) this.feeds.outstandingInverse.delete(id);
    const frameworkId = this.frameworkId;
    await this.rpc.send({
      type: "ACCEPT_INVERSE_OFFERS",
      frameworkId,
      inverseOfferIds,
      ...withFilters(filters),
    });
  }

  async declineInverseOffers(inverseOfferIds: string[], filters?: Filters): Promise<void> {
    for (const id of inverseOfferIds) this.feeds.outstandingInverse.delete(id);
    const frameworkId = this.frameworkId;
    await this.rpc.send({
      type: "DECLINE_INVERSE_OFFERS",
      frameworkId,
      inverseOfferIds,
      ...withFilters(filters),
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const err = new TransportError(ErrorCode.Closed, `framework client ${this.frameworkId} was closed`);
    this.heartbeat.stop();
    // Acknowledgements already made are sent, not dropped (the updates would come back).
    if (!this.nc.isClosed()) await this.acks.flush();
    this.acks.close(err);
    this.rpc.close(err);
    await this.feeds.close();
    if (this.ownsNc && !this.nc.isClosed()) await this.nc.close();
    this.log?.debug("framework client closed");
  }

  /**
   * Run a call that uses offers. While it is in flight they are not outstanding; once it is
   * answered they are gone. If it fails they were not used: a refusal leaves them outstanding
   * (the master changed nothing), a timeout also offers them again (see `Feeds.release`).
   */
  private async using(offerIds: string[], call: () => Promise<unknown>, offerAgain = true): Promise<void> {
    for (const id of offerIds) this.feeds.claimed.add(id);
    try {
      await call();
    } catch (err) {
      this.feeds.release(offerIds, offerAgain && err instanceof TimeoutError);
      throw err;
    }
    for (const id of offerIds) {
      this.feeds.claimed.delete(id);
      this.feeds.outstanding.delete(id);
    }
  }
}
