/**
 * One host's protocol session with the master, as an explicit state table (the way the domain
 * machines in src/state/machines are tables of what may follow what):
 *
 *   unregistered --START|LOST|HOST_UP--> registering --REGISTERED--> registered
 *   registered --LOST (unreachable, or STATUS says unknown host)--> registering
 *   any live state --HOST_DOWN|REFUSED_DOWN--> down --HOST_UP--> registering
 *   any state --REMOVED|GONE--> gone (final: silent for good)
 *
 * Only a registered host heartbeats and sends status updates. The agent (agent.ts) performs the
 * effects: a REGISTER on entering `registering`, pausing or resuming the host's reporter, killing
 * the host's tasks on HOST_DOWN and GONE.
 */
export type SessionState = "unregistered" | "registering" | "registered" | "down" | "gone";

export type SessionEvent =
  /** The agent starts: register. */
  | "START"
  /** The master accepted REGISTER. */
  | "REGISTERED"
  /** REGISTER was refused: the host is DOWN for maintenance (it waits for `host.up`). */
  | "REFUSED_DOWN"
  /** REGISTER ended without an answer that registers (aborted, failed, refused otherwise). */
  | "REFUSED"
  /** The master no longer counts the host as registered (host.unreachable, unknown host). */
  | "LOST"
  | "HOST_DOWN"
  | "HOST_UP"
  /** host.removed: silent for good, tasks left as they are. */
  | "REMOVED"
  /** host.gone, or REGISTER refused as gone: silent for good, tasks killed. */
  | "GONE";

const FINAL = { REMOVED: "gone", GONE: "gone" } as const;

export const SESSION_TRANSITIONS: Readonly<
  Record<SessionState, Readonly<Partial<Record<SessionEvent, SessionState>>>>
> = {
  unregistered: {
    START: "registering",
    LOST: "registering",
    HOST_UP: "registering",
    HOST_DOWN: "down",
    ...FINAL,
  },
  registering: {
    REGISTERED: "registered",
    REFUSED_DOWN: "down",
    REFUSED: "unregistered",
    HOST_DOWN: "down",
    ...FINAL,
  },
  registered: { LOST: "registering", HOST_DOWN: "down", ...FINAL },
  down: { HOST_UP: "registering", ...FINAL },
  gone: {},
};

/** The state after `event`, or undefined when the event changes nothing in `state`. */
export function nextSessionState(state: SessionState, event: SessionEvent): SessionState | undefined {
  return SESSION_TRANSITIONS[state][event];
}

export class HostSession {
  readonly hostId: string;
  state: SessionState = "unregistered";
  /** A REGISTER in flight (one at a time; a second LOST while one is out waits for it). */
  registering = false;
  /** Settles with whether the latest registration was accepted. */
  registration: Promise<boolean> = Promise.resolve(false);

  constructor(hostId: string) {
    this.hostId = hostId;
  }

  get registered(): boolean {
    return this.state === "registered";
  }
}
