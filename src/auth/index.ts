export { ANY_OPERATOR, defaultOperators, localPrincipal } from "./principal.js";
export { DENY_ALL, hostPathProblem, isOperator, type AuthPolicy } from "./policy.js";
