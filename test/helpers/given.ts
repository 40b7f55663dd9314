import type { NewEvent } from "../../src/events/index.js";
import { formatResources, parseResources, type ScalarTotals } from "../../src/resources/index.js";
import { createState, evolve, type ClusterState } from "../../src/state/index.js";
import { allocate, type AllocatorOptions, type OfferDecision } from "../../src/actors/allocator/index.js";
import type { DecideContext } from "../../src/actors/master/index.js";

/**
 * A cluster built by folding events, as the master would (given), for allocator cases that then
 * run a cycle (when) and check its offers (then). `now` advances only when told.
 */
export class Given {
  readonly state: ClusterState = createState();
  now = 1_000_000;
  private offers = 0;
  private tasks = 0;

  apply(e: NewEvent): this {
    evolve(this.state, { ...e, v: 1, at: this.now });
    return this;
  }

  host(
    hostId: string,
    spec: string,
    type: "host.registered" | "host.reregistered" = "host.registered",
  ): this {
    const resources = parseResources(spec);
    return this.apply({
      type,
      hostId,
      hostname: hostId,
      resources,
      attributes: {},
      sim: true,
    });
  }

  framework(frameworkId: string, roles: string[]): this {
    return this.apply({
      type: "framework.subscribed",
      frameworkId,
      name: frameworkId,
      roles,
      failoverTimeoutS: 0,
    });
  }

  weight(role: string, weight: number): this {
    return this.apply({ type: "role.weight", role, weight });
  }

  quota(role: string, guarantees: ScalarTotals, limits: ScalarTotals = {}): this {
    return this.apply({ type: "role.quota", role, guarantees, limits });
  }

  /** "The master made these offers": fold one offer.made per decision; returns the offer ids. */
  offer(decisions: OfferDecision[]): string[] {
    return decisions.map((d) => {
      const offerId = `o${++this.offers}`;
      const { frameworkId, role, hostId, resources } = d;
      this.apply({
        type: "offer.made",
        offerId,
        frameworkId,
        role,
        hostId,
        hostname: hostId,
        attributes: {},
        resources,
      });
      return offerId;
    });
  }

  /** The frameworks decline these offers, refusing the hosts for `refuseSeconds`. */
  decline(offerIds: string[], refuseSeconds: number): void {
    for (const offerId of offerIds) {
      const o = this.state.offers.get(offerId);
      if (o)
        this.apply({
          type: "offer.declined",
          offerId,
          frameworkId: o.frameworkId,
          hostId: o.hostId,
          refuseSeconds,
        });
    }
  }

  /** The framework accepts the offer and launches one task on all of it. */
  launch(offerId: string): this {
    const o = this.state.offers.get(offerId);
    if (!o) throw new Error(`no offer ${offerId}`);
    const { frameworkId, hostId, role, resources } = o;
    this.apply({ type: "offer.accepted", offerId, frameworkId, hostId, refuseSeconds: 0, unused: [] });
    return this.apply({
      type: "task.launched",
      taskId: `t${++this.tasks}`,
      frameworkId,
      hostId,
      role,
      name: "t",
      resources,
      command: { value: "true" },
      offerId,
    });
  }

  allocate(opts?: AllocatorOptions): OfferDecision[] {
    return allocate(this.state, this.now, opts);
  }

  /** One cycle whose offers are then folded, returned as `framework@host resources`. */
  cycle(opts?: AllocatorOptions): string[] {
    const ds = this.allocate(opts);
    this.offer(ds);
    return offered(ds);
  }
}

export const offered = (ds: OfferDecision[]): string[] =>
  ds.map((d) => `${d.frameworkId}@${d.hostId} ${formatResources(d.resources)}`);

/** A decider's context at `now`: no offers expected, refusals of 5 s by default. */
export const ctxAt = (now: number): DecideContext => ({
  now,
  nextOfferId: () => "unused",
  minAllocatable: [],
  defaultRefuseSeconds: 5,
});
