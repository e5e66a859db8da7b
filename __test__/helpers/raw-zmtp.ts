// ZMTP 3.1 bytes written by hand, and a raw `node:net` client to throw them (or garbage)
// at a zeropipe socket. Deliberately independent of the engine's own codec: a shared bug
// would otherwise cancel itself out.

import * as net from "node:net";

/** The 64-byte NULL-mechanism greeting: signature, version, mechanism, as-server, filler. */
export function greeting({ major = 3, minor = 1, mechanism = "NULL", asServer = 0 } = {}): Buffer {
  const g = Buffer.alloc(64);
  g[0] = 0xff; // signature: 0xFF, 8 padding bytes, 0x7F
  g[9] = 0x7f;
  g[10] = major;
  g[11] = minor;
  g.write(mechanism, 12, 20, "ascii"); // NUL-padded to 20 bytes by alloc
  g[32] = asServer;
  return g; // bytes 33..63: filler, zero
}

/** A command frame (flags 0x04, 1-byte size): name length, name, then `data`. */
export function command(name: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const body = Buffer.concat([Buffer.from([name.length]), Buffer.from(name, "ascii"), data]);
  if (body.length > 255) throw new Error("helper only writes short command frames");
  return Buffer.concat([Buffer.from([0x04, body.length]), body]);
}

/** READY with the given metadata: per property a 1-byte name length, name, 4-byte BE value length, value. */
export function ready(properties: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(properties)) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(Buffer.byteLength(value));
    parts.push(Buffer.from([name.length]), Buffer.from(name, "ascii"), len, Buffer.from(value));
  }
  return command("READY", Buffer.concat(parts));
}

/** A data frame with a 1-byte size (body up to 255 bytes); `more` sets the MORE flag. */
export function frame(body: Buffer | string, more = false): Buffer {
  const b = typeof body === "string" ? Buffer.from(body) : body;
  if (b.length > 255) throw new Error("use longFrameHeader for bodies over 255 bytes");
  return Buffer.concat([Buffer.from([more ? 0x01 : 0x00, b.length]), b]);
}

/** Just the header of a LONG data frame declaring `size` bytes (flags 0x02, 8-byte BE size). */
export function longFrameHeader(size: bigint, more = false): Buffer {
  const h = Buffer.alloc(9);
  h[0] = 0x02 | (more ? 0x01 : 0x00);
  h.writeBigUInt64BE(size, 1);
  return h;
}

/** Everything a well-behaved peer of type `socketType` sends before its first message. */
export function handshake(socketType: "PUSH" | "PULL"): Buffer {
  return Buffer.concat([greeting(), ready({ "Socket-Type": socketType })]);
}

/** A raw TCP client that records what it receives and when it is closed. */
export class RawClient {
  readonly socket: net.Socket;
  /** Everything the server sent us so far. */
  received = Buffer.alloc(0);
  /** Settles when the connection is fully closed, with whether it was the server's doing. */
  readonly closed: Promise<{ byPeer: boolean }>;
  private endedByPeer = false;
  private waiters: { n: number; resolve: () => void }[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.waiters = this.waiters.filter((w) => (this.received.length >= w.n ? (w.resolve(), false) : true));
    });
    socket.on("end", () => {
      this.endedByPeer = true;
    });
    // Writes racing the server's close may fail with EPIPE/ECONNRESET: that is the point.
    socket.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNRESET" || err.code === "EPIPE") this.endedByPeer = true;
    });
    this.closed = new Promise((resolve) => socket.once("close", () => resolve({ byPeer: this.endedByPeer })));
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host);
      s.once("connect", () => {
        s.off("error", reject);
        resolve(new RawClient(s));
      });
      s.once("error", reject);
    });
  }

  /** Writes `data`; resolves when the kernel took it (false if the connection is gone). */
  write(data: Buffer): Promise<boolean> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(data, (err) => resolve(!err)));
  }

  /** Resolves once at least `n` bytes have been received (rejects if the connection closes first). */
  waitForBytes(n: number): Promise<void> {
    if (this.received.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ n, resolve });
      this.closed.then(() => {
        if (this.received.length < n) reject(new Error(`connection closed after ${this.received.length} of ${n} bytes`));
      });
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The port of a `tcp://host:port` endpoint. */
export function portOf(endpoint: string): number {
  const m = /:(\d+)$/.exec(endpoint);
  if (!m) throw new Error(`no port in ${endpoint}`);
  return Number(m[1]);
}

/** Decodes the frames in `data` (header by header; stops at an incomplete frame). */
export function parseFrames(data: Buffer): { flags: number; body: Buffer }[] {
  const out: { flags: number; body: Buffer }[] = [];
  let pos = 0;
  while (pos + 2 <= data.length) {
    const flags = data[pos];
    let size: number;
    let header: number;
    if (flags & 0x02) {
      if (pos + 9 > data.length) break;
      size = Number(data.readBigUInt64BE(pos + 1));
      header = 9;
    } else {
      size = data[pos + 1];
      header = 2;
    }
    if (pos + header + size > data.length) break;
    out.push({ flags, body: data.subarray(pos + header, pos + header + size) });
    pos += header + size;
  }
  return out;
}
