// Free-port discovery. Binding to port 0 lets the kernel pick; we release the
// port immediately, so another process may grab it before redis-server does
// (server.ts retries on "Address already in use" for exactly that reason).
import { createServer } from 'node:net';

export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    // Never let this probe keep the event loop alive.
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('findFreePort: could not read the bound address'));
        return;
      }
      const { port } = address;
      // Resolve only once the socket is closed so the port is really free.
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
