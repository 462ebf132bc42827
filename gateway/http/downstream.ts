// The downstream side of one request as the router sees it. The node:http adapter implements it over
// IncomingMessage/ServerResponse; a raw-socket HTTP/1 path can implement the same contract.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { reasonPhrase } from './codes.ts';

export interface Downstream {
  readonly headersSent: boolean;
  /** Writes the status line (Envoy's reason phrase) and headers (flat, lowercase, wire order). */
  writeHead(status: number, headers: string[]): void;
  /** Writes an interim `100 Continue` (with these headers) before the response; only while headersSent is false. */
  writeContinue(headers: string[]): void;
  /** false: wait for onDrain before writing more. */
  write(chunk: Buffer | string): boolean;
  /** `trailers` (flat): the upstream's response trailers; HTTP/1.1 drops them, as Envoy does without enable_trailers. */
  end(chunk?: Buffer | string, trailers?: string[]): void;
  /** Abort the connection (a response already started cannot become a local reply). */
  reset(): void;
  onDrain(cb: () => void): void;
  /** For upgrades: hands the raw connection over (no HTTP response will be written through this object). */
  takeSocket(): import('node:net').Socket;
}

export class NodeDownstream implements Downstream {
  private readonly res: ServerResponse;
  private readonly req: IncomingMessage;
  private drainCb: (() => void) | undefined;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.req = req;
    this.res = res;
    // Envoy writes its own date/connection headers (lowercase): keep Node from adding title-case ones.
    res.sendDate = false;
    res.removeHeader('connection');
  }

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  /** The response says `connection: close`. */
  closesConnection = false;

  writeHead(status: number, headers: string[]): void {
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i] === 'connection' && (headers[i + 1] as string).toLowerCase().includes('close')) this.closesConnection = true;
    }
    this.res.writeHead(status, reasonPhrase(status), headers);
  }

  // node:http writes a bare `100 Continue` (its writeContinue takes no headers), and only through it does node
  // know the client was answered: an upstream 100's own headers are not relayed on this path.
  writeContinue(): void {
    this.res.writeContinue();
  }

  write(chunk: Buffer | string): boolean {
    return this.res.write(chunk);
  }

  end(chunk?: Buffer | string): void {
    if (chunk === undefined || chunk.length === 0) this.res.end();
    else this.res.end(chunk);
  }

  reset(): void {
    this.req.socket.destroy();
  }

  onDrain(cb: () => void): void {
    if (!this.drainCb) this.res.on('drain', () => this.drainCb?.());
    this.drainCb = cb;
  }

  takeSocket(): import('node:net').Socket {
    const s = this.req.socket;
    this.res.detachSocket(s);
    return s;
  }
}
