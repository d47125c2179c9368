/**
 * `colony/testing`: what Colony's own tests use to run against real servers, for the tests of
 * programs built on Colony. A private nats-server (from PATH) per test file or per test, and a
 * cluster of them to kill a member of.
 */
export { NatsServerError, freePort, startNatsCluster, startNatsServer, type NatsCluster, type NatsClusterOptions, type NatsServer, type NatsServerOptions } from "./nats-server.ts";
