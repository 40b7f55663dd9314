export { makeOffers, type OfferClock } from "./offers.js";
export { makeInverseOffers } from "./inverse-offers.js";
export { allocate, dominantShare, roleShares, type AllocatorOptions, type OfferDecision } from "./drf.js";
export { dominant } from "./sorter.js";
export {
  availableHeadroom,
  consumedQuota,
  formatQuantities,
  hasAny,
  quotaForest,
  requiredHeadroom,
  reservedScalars,
  type QuotaConfig,
  type QuotaNode,
} from "./quota.js";
