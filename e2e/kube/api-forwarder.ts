// A TCP forwarder between the controller and the API server, so a test can break the controller's
// connection at will (connections reset, new ones refused) while the API server itself stays up and the
// test keeps changing resources through it. TLS passes through untouched.
import { connect, createServer, type Server, type Socket } from 'node:net';

export class ApiForwarder {
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly target: { host: string; port: number };

  constructor(server: string) {
    const u = new URL(server);
    this.target = { host: u.hostname, port: Number(u.port || 443) };
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** Starts accepting (again, on the same port after cut()). */
  async listen(): Promise<void> {
    const server = createServer((down) => {
      const up = connect(this.target);
      for (const s of [down, up]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          down.destroy();
          up.destroy();
        });
      }
      down.pipe(up);
      up.pipe(down);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const a = server.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
    this.server = server;
  }

  /** Resets every open connection and refuses new ones until listen(). */
  async cut(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const sock of this.sockets) sock.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  openConnections(): number {
    return this.sockets.size / 2;
  }
}
