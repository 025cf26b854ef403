/**
 * The line transport the mail sessions run over. Production uses a TLS socket
 * (`tls_transport.ts`); unit tests pass a scripted transport. Sessions never
 * touch sockets directly, so every protocol rule is testable without a network.
 */
export interface LineTransport {
  /**
   * Reads one line and returns it without its line ending. Only CRLF ends a
   * line (as Exchange does); a bare LF stays part of the line. Rejects with a
   * `ConnectionError` on timeout, on a closed connection, or when the line is
   * longer than the transport's limit.
   */
  readLine(): Promise<string>;
  /** Sends `line` followed by CRLF. `line` must not contain CR or LF. */
  writeLine(line: string): Promise<void>;
  /** Closes the connection; safe to call twice. */
  close(): void;
}

/** Direction of a transcript entry: C = client sent, S = server sent. */
export type Direction = "C" | "S";

/** One line of the exchange with the server, as reported in JSON `transcript`. */
export interface TranscriptLine {
  dir: Direction;
  line: string;
}
