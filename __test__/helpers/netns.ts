// Separate hosts on one machine: network namespaces joined by veth pairs, so traffic between
// them goes through real network interfaces (with their own addresses, routes and
// counters) and not the loopback shortcut. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
//
// Names carry the test process's pid, so parallel runs never meet, and namespaces left by a
// run that was killed before its `after` hook are removed by the next one.

import { execFileSync } from "node:child_process";

export interface Host {
  /** The namespace's name, for `ip netns exec`. */
  readonly ns: string;
  /** This host's address on its link to the hub. */
  readonly address: string;
  /** The hub's address on that link: what this host connects to. */
  readonly hubAddress: string;
  /** The hub-side end of the link, whose counters show the traffic that crossed it. */
  readonly hubDevice: string;
}

export interface Hosts {
  readonly hub: string;
  readonly hosts: Host[];
  /** The command prefix that runs a program inside namespace `ns`. */
  exec(ns: string): string[];
  /** Bytes received and sent by the hub on its end of `host`'s link. */
  traffic(host: Host): { rx: number; tx: number };
  /** Deletes the namespaces (their veth pairs go with them). Safe to call twice. */
  remove(): void;
}

const PREFIX = "zpn";

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "pipe"] });
}

function errorText(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  return (e.stderr || e.message || String(err)).trim();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Why namespaces cannot be made here, or null if they can (probed by making one). */
export function netnsUnavailable(): string | null {
  const probe = `${PREFIX}${process.pid}p`;
  try {
    ip("netns", "add", probe);
  } catch (err) {
    return `\`ip netns add\` failed (root with CAP_SYS_ADMIN and iproute2 are needed): ${errorText(err)}`;
  }
  try {
    ip("netns", "del", probe);
  } catch {
    // Nothing more to learn: adding worked.
  }
  return null;
}

/** Removes namespaces of earlier test processes that are gone (killed before cleaning up). */
function removeStale(): void {
  let list = "";
  try {
    list = ip("netns", "list");
  } catch {
    return;
  }
  for (const line of list.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = new RegExp(`^${PREFIX}(\\d+)[a-z]\\d*$`).exec(name);
    if (m && !alive(Number(m[1]))) {
      try {
        ip("netns", "del", name);
      } catch {
        // Another run got there first.
      }
    }
  }
}

/**
 * A hub namespace and `count` host namespaces, each host joined to the hub by its own veth
 * pair on its own /24 (10.<octet>.<i>.0/24: the hub is .1, the host .2). Loopback is up
 * everywhere, so processes inside one namespace can still talk over 127.0.0.1.
 */
export function createHosts(count: number, octet = 201): Hosts {
  removeStale();
  const tag = `${PREFIX}${process.pid}`;
  const hub = `${tag}h`;
  const hosts: Host[] = [];
  const made: string[] = [];
  const remove = () => {
    for (const ns of made.splice(0).reverse()) {
      try {
        ip("netns", "del", ns);
      } catch {
        // Already gone.
      }
    }
  };
  try {
    for (const ns of [hub, ...Array.from({ length: count }, (_, i) => `${tag}w${i + 1}`)]) {
      try {
        ip("netns", "del", ns); // a recycled pid's leftover
      } catch {}
      ip("netns", "add", ns);
      made.push(ns);
      ip("-n", ns, "link", "set", "lo", "up");
    }
    for (let i = 1; i <= count; i++) {
      const ns = `${tag}w${i}`;
      const hubDevice = `${tag}h${i}`;
      const hostDevice = `${tag}v${i}`;
      const net = `10.${octet}.${i}`;
      // Created inside the hub namespace, so a failure half-way leaves nothing in the root one.
      ip("-n", hub, "link", "add", hubDevice, "type", "veth", "peer", "name", hostDevice, "netns", ns);
      ip("-n", hub, "addr", "add", `${net}.1/24`, "dev", hubDevice);
      ip("-n", ns, "addr", "add", `${net}.2/24`, "dev", hostDevice);
      ip("-n", hub, "link", "set", hubDevice, "up");
      ip("-n", ns, "link", "set", hostDevice, "up");
      hosts.push({ ns, address: `${net}.2`, hubAddress: `${net}.1`, hubDevice });
    }
  } catch (err) {
    remove();
    throw new Error(`could not set up network namespaces: ${errorText(err)}`);
  }
  return {
    hub,
    hosts,
    exec: (ns) => ["ip", "netns", "exec", ns],
    traffic: (host) => {
      const read = (what: string) =>
        Number(
          execFileSync("ip", ["netns", "exec", hub, "cat", `/sys/class/net/${host.hubDevice}/statistics/${what}_bytes`], {
            encoding: "utf8",
            timeout: 10_000,
          }).trim(),
        );
      return { rx: read("rx"), tx: read("tx") };
    },
    remove,
  };
}
