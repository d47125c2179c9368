/**
 * `colony/testing`: what Colony's own tests use to run against real servers, for the tests of
 * programs built on Colony. A private nats-server (from PATH) per test file or per test, and a
 * cluster of them to kill a member of.
 */
export { NatsServerError, freePort, startNatsCluster, startNatsServer, type NatsCluster, type NatsClusterOptions, type NatsServer, type NatsServerOptions } from "./nats-server.ts";
export { startFakeOpenAIServer, type FakeOpenAIServer, type FakeOpenAIServerOptions, type FakeReply, type FakeRequest, type FakeUsage } from "./openai-server.ts";
export { scriptedModel, type ScriptedModel, type ScriptedModelOptions, type ScriptedReply } from "./scripted-model.ts";
