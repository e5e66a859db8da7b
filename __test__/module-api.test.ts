// The module API — push(job) / pull(handler?) / configure() / close() — the shape the
// article's `zero.ts` wanted: call push() and pull() from anywhere without owning sockets.
// Module state is process-wide, so every test configures its own endpoint and ends with
// close(), which resets that state for the next test.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as net from "node:net";
import * as path from "node:path";
import { afterEach, describe, it, mock } from "node:test";

import { channel, close, configure, DEFAULT_ENDPOINT, Pull, pull, push } from "zeropipe";
import { fixedEndpoints, waitFor, within } from "./helpers/sockets";


const REPO = path.resolve(__dirname, "..");

const uniqueEndpoint = fixedEndpoints("module");

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Tracks whether a promise has settled, without ever leaving its rejection unhandled. */
function track<T>(p: Promise<T>) {
  const state = { settled: false, fulfilled: false, error: undefined as unknown };
  p.then(
    () => {
      state.settled = true;
      state.fulfilled = true;
    },
    (err) => {
      state.settled = true;
      state.error = err;
    },
  );
  return state;
}

// A failed assertion must not leave module sockets behind for the next test.
afterEach(async () => {
  await close();
});

/** The text of the next job that a fresh pull() stream yields (the stream is closed after). */
async function firstJob(): Promise<string | undefined> {
  for await (const [job] of pull()) return job!.toString();
  return undefined;
}

describe("module push()/pull()", () => {
  for (const proto of ["tcp", "ipc", "inproc"] as const) {
    it(`delivers jobs to a pull(handler) in push order over ${proto}`, async () => {
      configure({ endpoint: await uniqueEndpoint(proto) });
      const sent = Array.from({ length: 200 }, (_, i) => `job ${i}`);
      // Not awaited one by one: calls from anywhere must keep their call order.
      const pushes = Promise.all(sent.map((job) => push(job)));
      const got: string[] = [];
      const stream = pull(([job]) => {
        got.push(job.toString());
        if (got.length === sent.length) stream.close();
      });
      await within(Promise.resolve(stream), 10_000, "200 jobs");
      await pushes;
      assert.deepEqual(got, sent);
      await close();
    });

    it(`iterates jobs with for await over ${proto}, multipart jobs intact`, async () => {
      configure({ endpoint: await uniqueEndpoint(proto) });
      const binary = Buffer.from([0, 1, 2, 255]);
      const pushes = Promise.all([push("first"), push(["head", null, binary]), push(42)]);
      const got: Buffer[][] = [];
      const reading = (async () => {
        for await (const frames of pull()) {
          got.push(frames);
          if (got.length === 3) break;
        }
      })();
      await within(reading, 10_000, "three jobs");
      await pushes;
      assert.deepEqual(got, [
        [Buffer.from("first")],
        [Buffer.from("head"), Buffer.alloc(0), binary],
        [Buffer.from("42")],
      ]);
      await close();
    });
  }

  it("destructures the first frame in for await, as the article does", async () => {
    configure({ endpoint: await uniqueEndpoint("inproc") });
    // Not awaited: a push() waits until a worker is connected.
    const pushes = Promise.all([push("ok 1"), push("ok 2")]);
    const jobs: string[] = [];
    for await (const [job] of pull()) {
      jobs.push(job.toString());
      if (jobs.length === 2) break;
    }
    assert.deepEqual(jobs, ["ok 1", "ok 2"]);
    await pushes;
    await close();
  });

  it("runs a slow async handler one job at a time and resolves when the stream is closed", async () => {
    configure({ endpoint: await uniqueEndpoint("tcp") });
    const pushes = Promise.all(["a", "b", "c", "d", "e"].map((j) => push(j)));
    let active = 0;
    let maxActive = 0;
    const order: string[] = [];
    const stream = pull(async ([job]) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      await delay(20);
      order.push(job.toString());
      active -= 1;
      if (order.length === 5) stream.close();
    });
    assert.equal(await within(Promise.resolve(stream), 10_000, "the stream to end"), undefined);
    await pushes;
    assert.equal(maxActive, 1, "a handler call never overlaps the previous one");
    assert.deepEqual(order, ["a", "b", "c", "d", "e"]);
    assert.equal(stream.closed, true);
    await close();
  });

  it("resolves a waiting pull(handler) promise when the module is closed", async () => {
    configure({ endpoint: await uniqueEndpoint("ipc") });
    let calls = 0;
    const stream = pull(() => {
      calls += 1;
    });
    const done = track(Promise.resolve(stream));
    await delay(20);
    assert.equal(done.settled, false, "a stream waits for jobs until closed");
    await close();
    await within(Promise.resolve(stream), 5_000, "the stream to resolve after close()");
    assert.equal(done.fulfilled, true);
    assert.equal(calls, 0);
    assert.equal(stream.closed, true);
  });

  it("rejects the stream's promise with the error a handler throws, and stops taking jobs", async () => {
    configure({ endpoint: await uniqueEndpoint("inproc") });
    const boom = new Error("handler failed");
    const seen: string[] = [];
    const first = push("first");
    const stream = pull(async ([job]) => {
      seen.push(job.toString());
      throw boom;
    });
    await assert.rejects(within(Promise.resolve(stream), 5_000, "the rejection"), (err) => err === boom);
    await first;
    assert.deepEqual(seen, ["first"]);
    assert.equal(stream.closed, true);
    // The failed stream let go of the PULL socket, so a new stream gets the next job.
    const second = push("second");
    const again: string[] = [];
    for await (const [job] of pull()) {
      again.push(job.toString());
      break;
    }
    assert.deepEqual(again, ["second"]);
    await second;
    await close();
  });

  it("logs `Received Job <job>` for each job when consumed as a promise without a handler", async () => {
    configure({ endpoint: await uniqueEndpoint("inproc") });
    const logged: string[] = [];
    const log = mock.method(console, "log", (...args: unknown[]) => {
      logged.push(args.join(" "));
    });
    try {
      const stream = pull();
      const done = stream.then(() => "ended");
      await push("ok 1");
      await push(["multi", "part"]);
      await within(waitFor(() => logged.length === 2, 5_000, "two log lines"), 6_000, "two log lines");
      stream.close();
      assert.equal(await done, "ended");
    } finally {
      log.mock.restore();
    }
    assert.deepEqual(logged, ["Received Job ok 1", "Received Job multi part"]);
    await close();
  });

  it("throws a clear Error when one stream is used both as an iterator and as a promise", async () => {
    configure({ endpoint: await uniqueEndpoint("inproc") });
    const iterated = pull();
    iterated[Symbol.asyncIterator]();
    assert.throws(
      () => iterated.then(),
      (err: Error) => err.constructor === Error && /already consumed as an async iterator/.test(err.message),
    );
    await assert.rejects(
      (async () => {
        await iterated;
      })(),
      /already consumed as an async iterator/,
    );

    const awaited = pull(() => {});
    awaited.then(() => {});
    assert.throws(
      () => awaited[Symbol.asyncIterator](),
      (err: Error) => err.constructor === Error && /already consumed as a promise/.test(err.message),
    );
    assert.throws(() => awaited[Symbol.asyncIterator](), /use either `for await` or then\/catch\/await/);
    await close();
  });

  it("rejects a handler that is not a function with a TypeError", async () => {
    configure({ endpoint: await uniqueEndpoint("inproc") });
    for (const bad of ["handler", 1, {}, null]) {
      assert.throws(
        () => pull(bad as never),
        (err: Error) => err instanceof TypeError && /pull\(\) takes an optional handler function/.test(err.message),
      );
    }
    // Nothing was connected by the refused calls, so configure() is still allowed.
    configure({ endpoint: await uniqueEndpoint("inproc") });
    await close();
  });

  it("queues 5000 un-awaited push() calls made before any pull exists, then delivers them in call order", async () => {
    configure({ endpoint: await uniqueEndpoint("tcp") });
    const N = 5000; // five times the default high-water mark
    const calls = Array.from({ length: N }, (_, i) => push(`job ${i}`));
    const got: string[] = [];
    const stream = pull(([job]) => {
      got.push(job.toString());
      if (got.length === N) stream.close();
    });
    const results = await within(Promise.allSettled(calls), 20_000, "5000 pushes");
    const failed = results.filter((r) => r.status === "rejected");
    assert.deepEqual(failed, [], "no push() fails (zeromq.js would throw EBUSY)");
    await within(Promise.resolve(stream), 20_000, "5000 jobs");
    assert.equal(got.length, N);
    for (let i = 0; i < N; i++) {
      if (got[i] !== `job ${i}`) assert.fail(`job ${i} arrived as ${got[i]}`);
    }
    await close();
  });

  it("waits while no pull exists, and under a high-water mark of 1 until the puller takes jobs", async () => {
    configure({ endpoint: await uniqueEndpoint("inproc"), sendHighWaterMark: 1, receiveHighWaterMark: 1 });
    const first = track(push("job 1"));
    await delay(100);
    assert.equal(first.settled, false, "push() waits while no worker is connected");

    const jobs = pull()[Symbol.asyncIterator]();
    await within(waitFor(() => first.settled, 5_000, "job 1"), 6_000, "job 1");
    assert.equal(first.fulfilled, true);

    // libzmq sizes an inproc pipe as the sum of both marks: room for two jobs in total.
    const second = track(push("job 2"));
    const third = track(push("job 3"));
    const fourth = track(push("job 4"));
    await within(waitFor(() => second.settled, 5_000, "job 2"), 6_000, "job 2");
    await delay(50);
    assert.equal(second.fulfilled, true);
    assert.equal(third.settled, false, "job 3 waits: the pipe holds job 1 and job 2");
    assert.equal(fourth.settled, false, "job 4 waits behind job 3");

    const taken = await within(jobs.next(), 5_000, "the first job");
    assert.deepEqual(taken, { value: [Buffer.from("job 1")], done: false });
    await within(waitFor(() => third.settled && fourth.settled, 5_000, "jobs 3 and 4"), 6_000, "jobs 3 and 4");
    assert.equal(third.fulfilled && fourth.fulfilled, true);

    const rest: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await within(jobs.next(), 5_000, "the remaining jobs");
      assert.equal(r.done, false);
      rest.push(r.value![0].toString());
    }
    assert.deepEqual(rest, ["job 2", "job 3", "job 4"]);
    await close();
  });

  it("refuses configure() once the module sockets exist, with EINVAL, until close()", async () => {
    const endpoint = await uniqueEndpoint("tcp");
    configure({ endpoint });

    const waiting = push("never delivered");
    const expectEinval = () =>
      assert.throws(
        () => configure({ endpoint: "inproc://too-late" }),
        (err: Error & { code?: string }) =>
          err.code === "EINVAL" && /before the first push\(\) or pull\(\), or after close\(\)/.test(err.message),
      );
    expectEinval();
    // The push is still waiting for a worker when the socket closes.
    const refused = assert.rejects(waiting, (err: Error & { code?: string }) => err.code === "EBADF");
    await close();
    await refused;

    configure({ endpoint });
    const stream = pull();
    expectEinval();
    stream.close();
    // The last stream closing released the PULL socket, so configuring is allowed again.
    configure({ endpoint });
    await close();
  });

  it("hands each module socket the configure() options of its type: sendTimeout to push(), receiveTimeout to pull()", async () => {
    configure({ endpoint: await uniqueEndpoint("tcp"), sendTimeout: 50, receiveTimeout: 50 });
    const eagain = (err: Error & { code?: string }) => err.code === "EAGAIN" && /timed out after 50 ms/.test(err.message);
    // No worker connected: the push gives up after sendTimeout instead of waiting forever.
    await assert.rejects(within(push("nobody listens"), 5_000, "the send timeout"), eagain);
    // No job pushed: the stream's next() gives up after receiveTimeout.
    const iterator = pull()[Symbol.asyncIterator]();
    await assert.rejects(within(iterator.next(), 5_000, "the receive timeout"), eagain);
    await close();
  });

  it("rejects invalid configure() input with TypeError or RangeError and keeps the previous settings", async () => {
    const endpoint = await uniqueEndpoint("tcp");
    configure({ endpoint });
    const bad: Array<[unknown, typeof TypeError | typeof RangeError, RegExp]> = [
      [undefined, TypeError, /configure\(\) takes an object/],
      [null, TypeError, /configure\(\) takes an object/],
      ["tcp://127.0.0.1:1", TypeError, /configure\(\) takes an object/],
      [{ endpoint: 7777 }, TypeError, /Address must be a string/],
      [{ endpoint: "inproc://x", sendHighWaterMark: -1 }, RangeError, /"sendHighWaterMark" must be between 0 and/],
      [{ endpoint: "inproc://x", linger: -2 }, RangeError, /"linger" must be between -1 and/],
      [{ endpoint: "inproc://x", receiveTimeout: 1.5 }, TypeError, /"receiveTimeout" must be an integer/],
      [{ endpoint: "inproc://x", sendTimeout: "1" }, TypeError, /"sendTimeout" must be an integer/],
      [{ endpoint: "inproc://x", immediate: 1 }, TypeError, /"immediate" must be a boolean/],
      [{ endpoint: "inproc://x", bogus: 1 }, TypeError, /Unknown option "bogus"/],
    ];
    for (const [input, type, message] of bad) {
      assert.throws(
        () => configure(input as never),
        (err: Error & { code?: string }) =>
          err.constructor === type && message.test(err.message) && err.code === undefined,
        `configure(${JSON.stringify(input)})`,
      );
    }
    // Still the endpoint configured before the refused calls: a plain Pull there gets the job.
    const observer = new Pull();
    try {
      observer.connect(endpoint);
      await push("still here");
      assert.deepEqual(await within(observer.receive(), 5_000, "the job"), [Buffer.from("still here")]);
    } finally {
      await observer.close();
    }
    await close();
  });

  it("rejects a job that is not a MessageLike with a TypeError and sends nothing", async () => {
    const endpoint = await uniqueEndpoint("inproc");
    configure({ endpoint });
    const bad: Array<[unknown, RegExp]> = [
      [{ a: 1 }, /got a plain object.*serialize it first, e\.g\. JSON\.stringify/],
      [undefined, /got undefined/],
      [[], /an empty array has no frames/],
      [["ok", {}], /got a plain object/],
      [true, /got a boolean/],
      [Symbol("s"), /got a symbol/],
      [10n, /got a BigInt/],
      [new Date(0), /got an instance of Date/],
    ];
    for (const [job, message] of bad) {
      await assert.rejects(
        push(job as never),
        (err: Error & { code?: string }) => err instanceof TypeError && message.test(err.message) && err.code === undefined,
        `push(${String(job)})`,
      );
    }
    // No socket was created by the refused jobs: configure() is still allowed.
    configure({ endpoint });
    const good = push("good");
    const first = await within(pull()[Symbol.asyncIterator]().next(), 5_000, "the job");
    assert.deepEqual(first, { value: [Buffer.from("good")], done: false }, "the first job received is the valid one");
    await good;
    await close();
  });

  it("starts afresh after close(): the same endpoint binds again, and a new one can be configured", async () => {
    const endpoint = await uniqueEndpoint("tcp");
    configure({ endpoint });
    const first = push("before close");
    assert.equal(await firstJob(), "before close");
    await first;
    await close();

    // Same endpoint, rebound by a fresh PUSH.
    const again = push("after close");
    assert.equal(await firstJob(), "after close");
    await again;
    await close();

    configure({ endpoint: await uniqueEndpoint("ipc") });
    const third = push("on a new endpoint");
    assert.equal(await firstJob(), "on a new endpoint");
    await third;
    await close();
  });

  it("rejects push() with EADDRINUSE while another socket holds the tcp port, and binds on a later push()", async () => {
    const endpoint = await uniqueEndpoint("tcp");
    const port = Number(endpoint.split(":").pop());
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(port, "127.0.0.1", resolve));
    configure({ endpoint });
    const attempts = [push("a"), push("b"), push("c")];
    try {
      for (const attempt of attempts) {
        await assert.rejects(
          attempt,
          (err: Error & { code?: string }) => err.code === "EADDRINUSE" && err.message.includes(String(port)),
        );
      }
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
    // The failed bind left no socket behind: configure() is allowed and the next push binds.
    configure({ endpoint });
    const retry = push("after the port was freed");
    assert.equal(await firstJob(), "after the port was freed");
    await retry;
    await close();
  });

  it("rejects push() with EADDRINUSE while another process holds the tcp port", async () => {
    const endpoint = await uniqueEndpoint("tcp");
    const port = Number(endpoint.split(":").pop());
    const holder = spawn(
      process.execPath,
      ["-e", `require("net").createServer().listen(${port}, "127.0.0.1", () => console.log("listening"))`],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const exited = new Promise((resolve) => holder.once("exit", resolve));
    try {
      await within(
        new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve())),
        10_000,
        "the holder process to listen",
      );
      configure({ endpoint });
      await assert.rejects(push("blocked"), (err: Error & { code?: string }) => err.code === "EADDRINUSE");
    } finally {
      holder.kill();
      await exited;
    }
    const retry = push("unblocked");
    assert.equal(await firstJob(), "unblocked");
    await retry;
    await close();
  });

  it("rejects push() with EADDRINUSE while a live socket holds the ipc path, then binds once it is gone", async () => {
    const endpoint = await uniqueEndpoint("ipc");
    const holder = new Pull();
    await holder.bind(endpoint);
    configure({ endpoint });
    try {
      await assert.rejects(push("blocked"), (err: Error & { code?: string }) => err.code === "EADDRINUSE");
    } finally {
      await holder.close();
    }
    const retry = push("unblocked");
    assert.equal(await firstJob(), "unblocked");
    await retry;
    await close();
  });

  it("reports an unsupported endpoint from push() and pull() and leaves no socket behind", async () => {
    configure({ endpoint: "udp://127.0.0.1:5555" });
    const unsupported = (err: Error & { code?: string }) =>
      err.code === "EPROTONOSUPPORT" && err.message.includes("udp://127.0.0.1:5555");
    assert.throws(() => pull(), unsupported);
    await assert.rejects(push("x"), unsupported);
    // Neither failure kept a half-made socket: configure() works and the next pull() connects.
    const endpoint = await uniqueEndpoint("inproc");
    configure({ endpoint });
    const delivered = push("works");
    assert.equal(await firstJob(), "works");
    await delivered;
    await close();
  });

  it("uses ZEROPIPE_ENDPOINT as the default endpoint", async () => {
    assert.equal(DEFAULT_ENDPOINT, "tcp://127.0.0.1:7777");
    const endpoint = await uniqueEndpoint("ipc");
    const receiver = new Pull();
    try {
      receiver.connect(endpoint);
      // The child pushes with no configure(): only the environment names the endpoint.
      const child = spawn(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          'import { push, close } from "zeropipe"; await push("from the child"); await close();',
        ],
        { cwd: REPO, env: { ...process.env, ZEROPIPE_ENDPOINT: endpoint }, stdio: ["ignore", "inherit", "inherit"] },
      );
      const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      try {
        assert.deepEqual(await within(receiver.receive(), 15_000, "the child's job"), [Buffer.from("from the child")]);
        assert.equal(await within(exit, 15_000, "the child to exit"), 0);
      } finally {
        child.kill();
      }
    } finally {
      await receiver.close();
    }
  });
});

describe("named channels", () => {
  for (const proto of ["tcp", "ipc", "inproc"] as const) {
    it(`a worker stage pulls jobs from one channel and pushes results to another, never its own results (${proto})`, async () => {
      configure({ endpoint: await uniqueEndpoint(proto) });
      const results = channel(`results-${proto}`, { endpoint: await uniqueEndpoint(proto), bind: "pull" });
      // The sink binds the results channel's PULL; the worker stage connects its PUSH there.
      const collected: string[] = [];
      const sink = results.pull(([r]) => {
        collected.push(r!.toString());
      });
      const worker = pull(async ([job]) => {
        await results.push(`result of ${job}`);
      });
      // A stream's handler runs once it is consumed as a promise, as `pull().catch(…)` does.
      const running = Promise.all([sink, worker]);
      for (let i = 0; i < 10; i++) await push(`job ${i}`);
      await waitFor(() => collected.length >= 10, 10_000, "10 results");
      // More time for anything extra (a result pulled back in as a job) to show up.
      await delay(100);
      assert.deepEqual(
        [...collected].sort(),
        Array.from({ length: 10 }, (_, i) => `result of job ${i}`).sort(),
      );
      worker.close();
      sink.close();
      await within(running, 5_000, "the streams to end");
      await close();
    });
  }

  it("returns the same channel for the same name, and takes its endpoint from ZEROPIPE_ENDPOINT_<NAME>", async () => {
    const endpoint = await uniqueEndpoint("inproc");
    process.env.ZEROPIPE_ENDPOINT_AUDIT_LOG_2 = endpoint;
    try {
      const ch = channel("audit-log.2");
      assert.equal(ch, channel("audit-log.2"));
      assert.equal(ch.endpoint, endpoint);
      assert.equal(ch.bindSide, "push");
      const stream = ch.pull();
      await ch.push(["multi", "part"]);
      const r = await within(stream.next(), 5_000, "the job");
      assert.deepEqual(r.value!.map(String), ["multi", "part"]);
      await close();
    } finally {
      delete process.env.ZEROPIPE_ENDPOINT_AUDIT_LOG_2;
    }
  });

  it("refuses a channel without an endpoint with EINVAL naming the variable, and a bad name or side with TypeError", async () => {
    const ch = channel("nowhere-configured");
    await assert.rejects(ch.push("x"), (e: Error & { code?: string }) => {
      assert.equal(e.code, "EINVAL");
      assert.match(e.message, /ZEROPIPE_ENDPOINT_NOWHERE_CONFIGURED/);
      return true;
    });
    assert.throws(() => ch.pull(), { code: "EINVAL" });
    assert.throws(() => channel(""), TypeError);
    assert.throws(() => channel("x", { endpoint: "inproc://x", bind: "both" as "push" }), TypeError);
    assert.throws(() => configure({ endpoint: "inproc://x", bind: "pull" } as never), TypeError);
  });

  it("fails a stream whose bind fails with that error (EADDRINUSE), and keeps the module usable", async () => {
    const endpoint = await uniqueEndpoint("tcp");
    const squatter = new Pull();
    await squatter.bind(endpoint);
    try {
      const ch = channel("squatted", { endpoint, bind: "pull" });
      const stream = ch.pull();
      await assert.rejects(within(stream.next(), 5_000, "the bind error"), { code: "EADDRINUSE" });
      assert.equal(stream.closed, true);
      await ch.close();
    } finally {
      await squatter.close();
    }
  });

  it("close() closes the named channels too, and they start afresh afterwards", async () => {
    const ch = channel("restartable", { endpoint: await uniqueEndpoint("inproc") });
    const first = ch.pull();
    await ch.push("one");
    assert.deepEqual((await within(first.next(), 5_000, "one")).value!.map(String), ["one"]);
    await close();
    assert.equal(first.closed, true);
    const second = ch.pull();
    await ch.push("two");
    assert.deepEqual((await within(second.next(), 5_000, "two")).value!.map(String), ["two"]);
    await close();
  });
});
