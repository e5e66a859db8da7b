// Shared by the test files: sockets closed after every test, and free TCP ports.

import * as net from "node:net";
import { afterEach } from "node:test";

import { Pull, Push, type PullOptions, type PushOptions } from "zeropipe";

/**
 * Sockets opened by a test file's tests, closed after each test — a failed test must not
 * leave sockets behind that hold addresses or keep the runner alive. Closed with linger 0
 * so a Push with undelivered messages does not wait out the 30 s default.
 */
export function trackSockets() {
  const open: (Push | Pull)[] = [];
  afterEach(async () => {
    await Promise.all(
      open.splice(0).map((s) => {
        s.linger = 0;
        return s.close();
      }),
    );
  });
  const track = <S extends Push | Pull>(s: S): S => {
    open.push(s);
    return s;
  };
  return {
    track,
    push: (options?: PushOptions) => track(new Push(options)),
    pull: (options?: PullOptions) => track(new Pull(options)),
  };
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
