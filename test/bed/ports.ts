/**
 * Free TCP ports for servers that need their port written into a config file
 * before they start (Dovecot). Servers we run in-process listen on port 0
 * instead and need none of this.
 */

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago. The port is
 * released before returning, so another process could take it in between;
 * that race is acceptable for a test bed on loopback.
 */
export function freePort(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return Promise.resolve(port);
}
