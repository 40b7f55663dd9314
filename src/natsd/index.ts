export {
  startNatsServer,
  natsServerAvailable,
  type NatsServerHandle,
  type NatsServerOptions,
} from "./server.js";
export {
  startNatsCluster,
  type NatsCluster,
  type NatsClusterNode,
  type NatsClusterOptions,
} from "./cluster.js";
