/**
 * The swarm contract, run against every backend: leases and leader election (at most one leader
 * at a time, a new one after a leader stops or goes silent, fencing of a deposed one), and the bus
 * (subjects with wildcards, queue groups, request/reply, and messages that are too large, not JSON
 * or not of their channel's schema: rejected, counted, never thrown at the receiver).
 *
 * `newColonies(n)` gives n colonies on one backend (n processes' worth of connections where the
 * backend has them) and a cleanup.
 */
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { Bus, BusMessageError, BusRequestError, channel, ConfigError, Election, NotLeaderError, type Backend, type Colony, type ElectionEvent, type LeaseStore } from "../../src/index.ts";
import { subscribed } from "../fixtures/bus-probe.ts";
import { waitFor, within } from "../fixtures/helpers.ts";

/** Colonies on one backend, and as many more opens of it for the tests to reach its stores and bus directly. */
export type NewColonies = (count: number) => Promise<{ colonies: Colony[]; backends: Backend[]; cleanup(): Promise<void> }>;

/**
 * Long enough that a loaded machine renews in time (a leader renews every quarter lease, and
 * counts itself leader for 0.9 of one): no test here races a lease's timer. Where a lease must
 * lapse, a test stops its renewals (`PausableLeases`) and waits for the election's own events.
 */
const LEASE_MS = 3000;
/** How long a test waits for what should take a lease period or two, before it fails saying what it waited for. */
const PATIENCE_MS = 5 * LEASE_MS;

/**
 * A lease store whose calls can be held up, as a paused or cut-off process's would be, and that
 * counts the calls that came back: how a test sees that a candidate has been round again.
 */
class PausableLeases implements LeaseStore {
  readonly #inner: LeaseStore;
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  /** The calls held up by the current pause. */
  #held: Promise<unknown>[] = [];
  /** Reads answered so far. */
  gets = 0;

  constructor(inner: LeaseStore) {
    this.#inner = inner;
  }

  pause(): void {
    this.#gate ??= new Promise((resolve) => (this.#open = resolve));
  }

  /** Lets the held calls through; resolves once each of them has been answered (and its caller resumed). */
  async resume(): Promise<void> {
    const held = this.#held.splice(0);
    this.#open?.();
    this.#gate = undefined;
    await Promise.allSettled(held);
  }

  get(name: string) {
    return this.#call(() => this.#inner.get(name), true);
  }

  put(name: string, holder: string, revision: number) {
    return this.#call(() => this.#inner.put(name, holder, revision), false);
  }

  release(name: string, revision: number) {
    return this.#call(() => this.#inner.release(name, revision), false);
  }

  #call<T>(work: () => Promise<T>, read: boolean): Promise<T> {
    const gate = this.#gate;
    const call = (async () => {
      await gate;
      try {
        return await work();
      } finally {
        if (read) this.gets++;
      }
    })();
    if (gate) this.#held.push(call.catch(() => {}));
    return call;
  }
}

/**
 * Waits until `election`'s lease has been renewed `times` times from now, as the store shows (only
 * its holder writes a held lease); fails at once if the store shows another holder meanwhile.
 */
async function renewals(election: Election, times: number, what: string): Promise<void> {
  const revisions = new Set<number>();
  await waitFor(
    async () => {
      const { holder, revision } = await election.leader();
      assert.equal(holder, election.candidate, `${what}: the lease changed hands`);
      revisions.add(revision);
      return revisions.size > times;
    },
    PATIENCE_MS + times * LEASE_MS,
    what,
  );
}

/** Samples who counts itself leader every few ms; fails on any sample with two. */
function watchLeaders(elections: Election[]): { stop(): void; samples: number; overlaps: string[] } {
  const state = { samples: 0, overlaps: [] as string[], stop: () => clearInterval(timer) };
  const timer = setInterval(() => {
    const leading = elections.filter((e) => e.isLeader).map((e) => e.candidate);
    state.samples++;
    if (leading.length > 1) state.overlaps.push(leading.join(" and "));
  }, 2);
  return state;
}

export function swarmContract(name: string, newColonies: NewColonies): void {
  describe(`swarm contract: ${name}`, { timeout: 180_000 }, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });
    async function setup(count: number) {
      const made = await newColonies(count);
      cleanups.push(made.cleanup);
      return { ...made, leases: made.backends.map((b) => b.leases) };
    }

    describe("leases", () => {
      test("revisions: create only from 0, replace only at the current revision, never the same revision twice", async () => {
        const { leases } = await setup(2);
        const [a, b] = leases as [LeaseStore, LeaseStore];
        assert.deepEqual(await a.get("role-x"), { revision: 0 });
        const r1 = await a.put("role-x", "a", 0);
        assert.ok(r1 !== undefined && r1 > 0);
        assert.equal(await b.put("role-x", "b", 0), undefined, "a second create loses");
        assert.deepEqual(await b.get("role-x"), { holder: "a", revision: r1 });
        const r2 = await a.put("role-x", "a", r1);
        assert.ok(r2 !== undefined && r2 > r1);
        assert.equal(await b.put("role-x", "b", r1), undefined, "a stale revision loses");
        assert.equal(await b.release("role-x", r1), false);
        assert.equal(await a.release("role-x", r2), true);
        const freed = await b.get("role-x");
        assert.equal(freed.holder, undefined);
        assert.ok(freed.revision > r2);
        const r3 = await b.put("role-x", "b", freed.revision);
        assert.ok(r3 !== undefined && r3 > freed.revision);
        assert.deepEqual(await a.get("role-x"), { holder: "b", revision: r3 });
        assert.deepEqual(await a.get("role-y"), { revision: 0 }, "leases are separate");
      });
    });

    describe("leader election", () => {
      test("bad roles and lease periods are a ConfigError", async () => {
        const { leases } = await setup(1);
        assert.throws(() => new Election(leases[0]!, "no spaces"), ConfigError);
        assert.throws(() => new Election(leases[0]!, "ok", { leaseMs: 1 }), ConfigError);
      });

      test("of three candidates exactly one leads; when it stops, another takes its freed lease; never two at once", async () => {
        const { colonies } = await setup(3);
        const elections = await Promise.all(colonies.map((c, i) => c.elect("single", { candidate: `c${i}`, leaseMs: LEASE_MS })));
        const events: string[] = [];
        for (const election of elections) {
          election.on((event) => {
            if (event.type !== "error") events.push(`${election.candidate} ${event.type}`);
          });
        }
        const watch = watchLeaders(elections);
        try {
          const first = await waitFor(() => elections.find((e) => e.isLeader), PATIENCE_MS, "a leader");
          const term = first.term!;
          const before = events.length;
          // Five renewals, each a quarter lease after the one before: more than a whole lease
          // period, in which the others would have taken a lease that stood still.
          await renewals(first, 5, "the leader to renew its lease five times");
          assert.deepEqual(events.slice(before), [], "nobody elected or deposed while the leader renews");
          assert.deepEqual(elections.filter((e) => e.isLeader).map((e) => e.candidate), [first.candidate], "still one leader after more than a lease period");
          assert.equal(first.term, term, "still in its first term");
          assert.equal((await first.leader()).holder, first.candidate);
          assert.ok(await first.confirm());
          await assert.rejects(elections.find((e) => e !== first)!.whileLeader(() => 1), NotLeaderError);
          assert.equal(await first.whileLeader(() => "led"), "led");

          await first.stop();
          assert.equal(first.isLeader, false);
          const second = await waitFor(() => elections.find((e) => e.isLeader), PATIENCE_MS, "a second leader, on the freed lease");
          assert.notEqual(second.candidate, first.candidate);
          assert.equal((await second.leader()).holder, second.candidate);
          assert.ok(second.term! > term, "terms grow");
        } finally {
          watch.stop();
        }
        assert.ok(watch.samples > 50);
        assert.deepEqual(watch.overlaps, []);
      });

      test("a leader that goes silent: it stops counting itself leader before another is elected; on waking it is fenced off", async () => {
        const { leases } = await setup(2);
        const paused = new PausableLeases(leases[0]!);
        // Never paused: it counts b's reads of the lease.
        const looking = new PausableLeases(leases[1]!);
        const a = new Election(paused, "silent", { candidate: "a", leaseMs: LEASE_MS });
        const events: ElectionEvent[] = [];
        a.on((e) => events.push(e));
        a.start();
        await within(a.elected(), "a to be elected", PATIENCE_MS);
        const b = new Election(looking, "silent", { candidate: "b", leaseMs: LEASE_MS }).start();
        const watch = watchLeaders([a, b]);
        try {
          // b campaigns: it has read the lease twice, and found it held both times.
          await waitFor(() => looking.gets >= 2, PATIENCE_MS, "b to read the lease twice");
          assert.ok(a.isLeader && !b.isLeader);
          // Silent from here: its renewals are held up; its lease lapses as the others see it.
          paused.pause();
          await waitFor(() => !a.isLeader, PATIENCE_MS, "the silent leader to stop counting itself leader");
          await within(b.elected(), "b to be elected once a's lease stood still", PATIENCE_MS);
          assert.ok(await b.confirm());
          // Its renewal (held up while paused) is answered now; then it campaigns twice more. None
          // of that may bring it back.
          await paused.resume();
          const woken = paused.gets;
          await waitFor(() => paused.gets >= woken + 2, PATIENCE_MS, "the woken candidate to read the lease twice more");
          assert.equal(a.isLeader, false);
          assert.equal(await a.confirm(), false);
          assert.ok(b.isLeader);
          assert.deepEqual(
            events.filter((e) => e.type !== "error").map((e) => e.type),
            ["elected", "deposed"],
          );
        } finally {
          watch.stop();
          await a.stop();
          await b.stop();
        }
        assert.deepEqual(watch.overlaps, []);
      });

      test("confirm() holds for a leader all through its renewals, even while one is on its way", async () => {
        const { leases } = await setup(1);
        const inner = leases[0]!;
        let renewing = 0;
        let written = 0;
        // Renewals that take a while: the store shows the new revision before the leader knows it.
        const slow: LeaseStore = {
          get: (name) => inner.get(name),
          put: async (name, holder, revision) => {
            renewing++;
            try {
              const revised = await inner.put(name, holder, revision);
              // The answer's slow way back (a simulated latency; nothing waits on it).
              await sleep(100);
              return revised;
            } finally {
              renewing--;
              written++;
            }
          },
          release: (name, revision) => inner.release(name, revision),
        };
        const leader = new Election(slow, "confirming", { candidate: "only", leaseMs: LEASE_MS }).start();
        try {
          await within(leader.elected(), "the only candidate to be elected", PATIENCE_MS);
          const taken = written;
          let asked = 0;
          let whileRenewing = 0;
          const wrong: number[] = [];
          // Asks again and again, until three renewals have come back and three of the answers
          // were asked for while one was on its way.
          await waitFor(
            async () => {
              const term = leader.term;
              const during = renewing > 0;
              const answer = await leader.confirm();
              // Only a sitting leader's answers count (it does not lapse here, but that is not what is checked).
              if (term !== undefined && leader.term === term) {
                asked++;
                if (during) whileRenewing++;
                if (!answer) wrong.push(asked);
              }
              return written >= taken + 3 && whileRenewing >= 3;
            },
            PATIENCE_MS,
            "three renewals, and three confirm() calls made while one was on its way",
          );
          assert.deepEqual(wrong, [], `every confirm() of a sitting leader is true (${asked} asked)`);
        } finally {
          await leader.stop();
        }
      });

      test("elected() rejects once the election is stopped; the colony's close stops its elections", async () => {
        const { colonies, leases } = await setup(2);
        const holder = await colonies[0]!.elect("busy", { candidate: "holder", leaseMs: LEASE_MS });
        await within(holder.elected(), "the holder to be elected", PATIENCE_MS);
        const waiting = await colonies[1]!.elect("busy", { candidate: "waiting", leaseMs: LEASE_MS });
        const seen: string[] = [];
        waiting.on((e) => seen.push(e.type));
        const pending = waiting.elected();
        await waiting.stop();
        await assert.rejects(pending, (error: Error) => error.name === "ClosedError");
        assert.deepEqual(seen, ["stopped"], "a candidate that never led is not deposed");
        await colonies[0]!.close();
        assert.equal(holder.isLeader, false);
        assert.equal((await leases[1]!.get("busy")).holder, undefined, "closing freed the lease");
      });
    });

    describe("bus", () => {
      const note = channel("note", z.strictObject({ text: z.string(), n: z.number().int() }));
      const echo = channel("echo", z.strictObject({ text: z.string() }));

      test("subjects with wildcards reach every subscriber; a queue group shares its messages", async () => {
        const { colonies } = await setup(3);
        const [a, b, c] = (await Promise.all(colonies.map((x) => x.bus()))) as [Bus, Bus, Bus];
        const all: string[] = [];
        const group: Record<string, number[]> = { b: [], c: [] };
        const offs = [
          a.subscribe(note, "notes.>", (m, subject) => void all.push(`${subject}:${m.n}`)),
          b.subscribe(note, "work.*", (m) => void group.b!.push(m.n), { queue: "workers" }),
          c.subscribe(note, "work.*", (m) => void group.c!.push(m.n), { queue: "workers" }),
        ];
        for (const [to, name] of [[a, "a"], [b, "b"], [c, "c"]] as const) await subscribed(a, to, `${name}'s subscriptions`, PATIENCE_MS);
        a.publish(note, "notes.x.y", { text: "deep", n: 1 });
        a.publish(note, "notes", { text: "not under notes.", n: 2 });
        for (let n = 0; n < 40; n++) a.publish(note, "work.item", { text: "job", n });
        await waitFor(() => group.b!.length + group.c!.length === 40, PATIENCE_MS, "the queue group's 40 messages");
        await waitFor(() => all.length === 1, PATIENCE_MS, "the wildcard message");
        assert.deepEqual(all, ["notes.x.y:1"]);
        assert.deepEqual([...group.b!, ...group.c!].sort((x, y) => x - y), Array.from({ length: 40 }, (_, i) => i), "each message to one member");
        assert.ok(group.b!.length > 0 && group.c!.length > 0, `both members got work (${group.b!.length}/${group.c!.length})`);
        for (const off of offs) off();
      });

      test("request/reply; nobody listening or nobody answering is a BusRequestError; a bad message is refused before it is sent", async () => {
        const { colonies } = await setup(2);
        const [a, b] = (await Promise.all(colonies.map((x) => x.bus()))) as [Bus, Bus];
        const off = b.serve(echo, echo, "echo", (q) => ({ text: q.text.toUpperCase() }));
        await subscribed(a, b, "b serving echo", PATIENCE_MS);
        // Generous timeouts where an answer is expected: a loaded machine must not turn one into BUS_TIMEOUT.
        assert.deepEqual(await a.request(echo, echo, "echo", { text: "hi" }, PATIENCE_MS), { text: "HI" });
        await assert.rejects(a.request(echo, echo, "nobody", { text: "hi" }, PATIENCE_MS), (e: Error) => e instanceof BusRequestError && e.code === "BUS_NO_RESPONDERS");
        const mute = b.subscribe(echo, "mute", () => {});
        await subscribed(a, b, "b's mute subscription", PATIENCE_MS);
        await assert.rejects(a.request(echo, echo, "mute", { text: "hi" }, 200), (e: Error) => e instanceof BusRequestError && e.code === "BUS_TIMEOUT");
        assert.throws(() => a.publish(note, "notes.x", { text: "no n" } as never), BusMessageError);
        assert.throws(() => a.publish(echo, "echo", { text: "x".repeat(a.maxBytes) }), /over the bus limit/);
        await off();
        mute();
      });

      test("too large, not JSON, not of the schema, or a handler that throws: rejected and counted; the next good message is handled", async () => {
        const { backends } = await setup(2);
        const raw = (subject: string, payload: Uint8Array) => backends[0]!.bus.publish(subject, payload);
        const receiver = new Bus(backends[1]!.bus, { maxBytes: 1024 });
        const got: number[] = [];
        const rejected: string[] = [];
        receiver.onReject((r) => rejected.push(`${r.reason}:${r.subject}`));
        receiver.subscribe(note, "in.*", (m) => {
          if (m.n < 0) throw new Error("negative");
          got.push(m.n);
        });
        // Probes on buses of their own over the same connections: the receiver's counts stay its messages'.
        await subscribed(new Bus(backends[0]!.bus), new Bus(backends[1]!.bus), "the receiver's subscription", PATIENCE_MS);
        const bytes = (s: string) => new TextEncoder().encode(s);
        raw("in.a", bytes("{not json"));
        raw("in.b", new Uint8Array([0xff, 0xfe, 0x00]));
        raw("in.c", bytes(JSON.stringify({ text: "no n" })));
        raw("in.d", bytes(JSON.stringify({ text: "extra", n: 1, more: true })));
        raw("in.e", bytes(JSON.stringify({ text: "x".repeat(2000), n: 2 })));
        raw("in.f", bytes(JSON.stringify({ text: "throws", n: -1 })));
        raw("in.g", bytes(JSON.stringify({ text: "fine", n: 7 })));
        await waitFor(() => got.length === 1 && rejected.length === 6, PATIENCE_MS, "one good message and six rejections");
        assert.deepEqual(got, [7]);
        assert.deepEqual(rejected.sort(), ["handler:in.f", "malformed:in.a", "malformed:in.b", "oversized:in.e", "schema:in.c", "schema:in.d"]);
        assert.deepEqual(receiver.stats().rejected, { oversized: 1, malformed: 2, schema: 2, handler: 1 });
        assert.equal(receiver.stats().received, 7);
      });
    });
  });
}
