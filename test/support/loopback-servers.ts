/** HTTP servers a test starts on 127.0.0.1 (a free port each), and closes together. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export function loopbackServers() {
  const servers: Server[] = [];
  return {
    /** Listens on a free loopback port; answers the server's base URL. */
    async listen(server: Server): Promise<string> {
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    closeAll(): Promise<void> {
      return Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve())))).then(() => undefined);
    },
  };
}
