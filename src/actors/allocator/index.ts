export { allocate, dominantShare, roleShares, type AllocatorOptions, type OfferDecision } from "./drf.js";
export { dominant } from "./sorter.js";
