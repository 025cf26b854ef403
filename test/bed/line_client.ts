/**
 * A raw CRLF line client over TLS or plain TCP for the test-bed servers (Dovecot and the
 * Exchange-like server): no protocol knowledge, so a test sees exactly what the server sends.
 */
import assert from "node:assert/strict";

const encoder = new TextEncoder();

export class LineClient {
  #text = "";
  #chunk = new Uint8Array(16 * 1024);
  #read: Promise<number | null> | null = null;
  #decoder = new TextDecoder();

  private constructor(private conn: Deno.Conn) {}

  static async tls(port: number, caPem: string): Promise<LineClient> {
    return new LineClient(await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caPem] }));
  }

  /** This end's port (the server's logs name the peer by it). */
  get localPort(): number {
    return (this.conn.localAddr as Deno.NetAddr).port;
  }

  static async tcp(port: number): Promise<LineClient> {
    return new LineClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /**
   * The next CRLF line, or null when none arrives within `ms` or the server closed.
   * `ms` may be `Infinity`: then only the server closing gives null.
   */
  async line(ms = 2000): Promise<string | null> {
    while (true) {
      const line = this.#takeLine();
      if (line !== null) return line;
      const got = await this.#fill(ms);
      if (got !== "data") return null;
    }
  }

  /** The next CRLF line, however long it takes; throws when the server closes first. */
  async nextLine(): Promise<string> {
    const line = await this.line(Infinity);
    if (line === null) throw new Error(`connection closed; unread: ${JSON.stringify(this.#text)}`);
    return line;
  }

  /**
   * Lines up to and including the first one that starts with `prefix`; fails when a line does not
   * arrive within `ms` (`Infinity`: when the server closes first).
   */
  async until(prefix: string, ms = 2000): Promise<string[]> {
    const lines: string[] = [];
    while (true) {
      const line = await this.line(ms);
      assert.notEqual(line, null, `no line starting with ${prefix}; got ${JSON.stringify(lines)}`);
      lines.push(line!);
      if (line!.startsWith(prefix)) return lines;
    }
  }

  /** True when the server has closed the connection (within `ms`). */
  async closedByServer(ms = 2000): Promise<boolean> {
    while (true) {
      const got = await this.#fill(ms);
      if (got === "eof") return true;
      if (got === "timeout") return false;
    }
  }

  /**
   * Starts TLS on the connection (after the server's go-ahead to STLS/STARTTLS), trusting
   * `caPem` for `localhost`. Whatever was received but not read yet stays unread.
   */
  async startTls(caPem: string): Promise<void> {
    assert.equal(this.#read, null, "no read may be pending when TLS starts");
    assert.ok(!("handshake" in this.conn), "a plain TCP connection (LineClient.tcp)");
    const tcp = this.conn as Deno.TcpConn;
    this.conn = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [caPem] });
  }

  send(line: string): Promise<void> {
    return this.raw(line + "\r\n");
  }

  async raw(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.#read?.catch(() => null);
  }

  #takeLine(): string | null {
    const end = this.#text.indexOf("\r\n");
    if (end < 0) return null;
    const line = this.#text.slice(0, end);
    this.#text = this.#text.slice(end + 2);
    return line;
  }

  async #fill(ms: number): Promise<"data" | "eof" | "timeout"> {
    this.#read ??= this.conn.read(this.#chunk).catch(() => null);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waits: Promise<number | null | "timeout">[] = [this.#read];
    if (ms !== Infinity) {
      waits.push(
        new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), ms)),
      );
    }
    const n = await Promise.race(waits);
    clearTimeout(timer);
    if (n === "timeout") return "timeout";
    this.#read = null;
    if (n === null) return "eof";
    this.#text += this.#decoder.decode(this.#chunk.subarray(0, n));
    return "data";
  }
}
