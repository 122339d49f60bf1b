/**
 * Test and dev servers (fake providers, the hub, the scripted model) listen on 127.0.0.1 only,
 * and their `close` must not wait for keep-alive connections a client left open.
 */
import type * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface LoopbackServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:`port` (0 = any free port); rejects when the port is taken. */
export function listenOnLoopback(server: http.Server, port = 0): Promise<LoopbackServer> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      const actual = (server.address() as AddressInfo).port;
      resolve({
        url: `http://127.0.0.1:${actual}`,
        port: actual,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
