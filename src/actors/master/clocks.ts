import type { Subscription } from "@nats-io/transport-node";
import { subjects, type CorralEvent } from "../../events/index.js";
import { allocate, makeInverseOffers, makeOffers } from "../allocator/index.js";
import type { Commit } from "./commit.js";
import type { MasterCore } from "./core.js";
import { drainSweep } from "./decide-drain.js";
import { frameworkTimeouts } from "./framework-liveness.js";
import { hostTimeouts, offerTimeouts } from "./timeouts.js";
import { unreachableGoneTimeouts } from "./unreachable-gone.js";

/** How often the clock's sweeps (offer, host, framework timeouts, drains) run. */
const SWEEP_MS = 1000;

/**
 * The decisions the clock makes while this master leads: allocation (every interval over all
 * hosts, and a few ms after resources are freed over the hosts that changed) and the sweeps of
 * timeouts, judged by the signs of life (heartbeats, calls) hosts and frameworks give.
 */
export class Clocks {
  readonly #core: MasterCore;
  #commit: Commit | undefined;
  #dirtyHosts = new Set<string>();
  #allDirty = false;
  #allocTimer: NodeJS.Timeout | undefined;
  #timers: NodeJS.Timeout[] = [];
  #subs: Subscription[] = [];
  /** Hosts' last heartbeat, on this master's clock. */
  #lastSeen = new Map<string, number>();
  /** Frameworks' last sign of life (heartbeat or call), on this master's clock. */
  #fwLastSeen = new Map<string, number>();

  constructor(core: MasterCore) {
    this.#core = core;
  }

  /** The commit the clock's decisions go through (the two need each other: dirty hosts). */
  commitWith(commit: Commit): void {
    this.#commit = commit;
  }

  /** A framework gave a sign of life (a heartbeat or a call). */
  frameworkAlive(frameworkId: string): void {
    if (this.#core.state.frameworks.has(frameworkId)) this.#fwLastSeen.set(frameworkId, Date.now());
  }

  /**
   * Start the leadership's clocks. Hosts and frameworks of the recovered state get a full
   * timeout to find the new leader.
   */
  start(): void {
    const core = this.#core;
    const now = Date.now();
    for (const h of core.state.hosts.values()) if (h.status === "ACTIVE") this.#lastSeen.set(h.hostId, now);
    for (const f of core.state.frameworks.values())
      if (f.status === "ACTIVE") this.#fwLastSeen.set(f.frameworkId, now);
    this.#subs.push(
      core.nc.subscribe(subjects.heartbeats, {
        callback: (_err, m) => {
          const hostId = m.subject.slice("corral.hb.".length);
          core.counters.heartbeats++;
          if (core.state.hosts.has(hostId)) this.#lastSeen.set(hostId, Date.now());
        },
      }),
      core.nc.subscribe(subjects.frameworkHeartbeats, {
        callback: (_err, m) => {
          core.counters.frameworkHeartbeats++;
          this.frameworkAlive(m.subject.slice("corral.hb.fw.".length));
        },
      }),
    );
    this.#timers.push(
      setInterval(() => this.scheduleAllocation("all"), core.settings.allocationIntervalMs),
      setInterval(() => this.#sweep(), SWEEP_MS),
    );
  }

  stop(): void {
    for (const t of this.#timers.splice(0)) clearInterval(t);
    if (this.#allocTimer) clearTimeout(this.#allocTimer);
    this.#allocTimer = undefined;
    for (const s of this.#subs.splice(0)) s.unsubscribe();
  }

  /** Allocate these hosts (or all) soon, batching the frees of the next few ms together. */
  scheduleAllocation(dirty: string[] | "all"): void {
    if (dirty === "all") this.#allDirty = true;
    else for (const h of dirty) this.#dirtyHosts.add(h);
    if (this.#allocTimer || !this.#core.appender) return;
    this.#allocTimer = setTimeout(() => {
      this.#allocTimer = undefined;
      this.#allocate();
    }, this.#core.settings.allocationDelayMs);
  }

  #allocate(): void {
    const core = this.#core;
    if (!core.appender || !this.#commit) return;
    const hostIds = this.#allDirty ? undefined : [...this.#dirtyHosts];
    this.#allDirty = false;
    this.#dirtyHosts.clear();
    const ctx = core.ctx();
    const minAllocatable = core.settings.minAllocatable;
    const decisions = allocate(
      core.state,
      ctx.now,
      hostIds ? { minAllocatable, hostIds } : { minAllocatable },
    );
    core.counters.allocationRuns++;
    const events: CorralEvent[] = makeOffers(core.state, decisions, ctx);
    core.counters.offersMade += events.length;
    events.push(...makeInverseOffers(core.state, ctx));
    if (events.length === 0) return;
    void this.#commit.commit({ events }, core.nextDecisionId("alloc"));
  }

  /** Offer timeouts and silent hosts: decisions the clock makes. */
  #sweep(): void {
    const core = this.#core;
    if (!core.appender || !this.#commit) return;
    const ctx = core.ctx();
    const s = core.settings;
    // Each sweep reads the same state, so two of them may rescind one offer: keep the first.
    const rescinded = new Set<string>();
    const events = [
      ...offerTimeouts(core.state, ctx, s.offerTimeoutS),
      ...hostTimeouts(core.state, ctx, this.#lastSeen, s.hostTimeoutMs),
      ...unreachableGoneTimeouts(core.state, ctx, s.unreachableGoneTimeoutMs),
      ...drainSweep(core.state, ctx),
      ...frameworkTimeouts(core.state, ctx, this.#fwLastSeen, s.frameworkTimeoutMs),
    ].filter(
      (e) => e.type !== "offer.rescinded" || (!rescinded.has(e.offerId) && !!rescinded.add(e.offerId)),
    );
    if (events.length === 0) return;
    const dirty = [...new Set(events.map((e) => ("hostId" in e ? e.hostId : "")).filter(Boolean))];
    void this.#commit.commit({ events, dirty }, core.nextDecisionId("sweep"));
  }
}
