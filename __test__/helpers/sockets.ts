// Shared by the test files: sockets closed after every test, and free TCP ports.

import { existsSync, unlinkSync } from "node:fs";
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

export type Proto = "tcp" | "ipc" | "inproc";

/**
 * Addresses known before anyone binds them (the module API and the example scripts need the
 * same address on both sides): a free tcp port, an ipc path (its file removed after each
 * test, since a killed script cannot remove it), or an inproc name. `tag` keeps files apart.
 */
export function fixedEndpoints(tag: string): (proto: Proto) => Promise<string> {
  const ipcPaths: string[] = [];
  let counter = 0;
  afterEach(() => {
    for (const p of ipcPaths.splice(0)) {
      if (existsSync(p)) unlinkSync(p);
    }
  });
  return async (proto) => {
    counter += 1;
    if (proto === "tcp") return `tcp://127.0.0.1:${await freePort()}`;
    if (proto === "ipc") {
      const p = `/tmp/zeropipe-test-${tag}-${process.pid}-${counter}.sock`;
      ipcPaths.push(p);
      return `ipc://${p}`;
    }
    return `inproc://${tag}-${process.pid}-${counter}`;
  };
}
