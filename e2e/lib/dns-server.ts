// A tiny authoritative DNS server on loopback for tests: answers A queries from a table (with a TTL),
// NXDOMAIN for anything else, and counts the queries it saw. Enough for node's c-ares resolver
// (`dns.Resolver#setServers(['127.0.0.1:PORT'])`), which is what meshgate's DNS clusters use when
// MESHGATE_DNS_SERVER / --dns-server is set.
import { createSocket, type Socket } from 'node:dgram';

export class TestDnsServer {
  readonly records = new Map<string, string[]>();
  readonly queries: string[] = [];
  ttl = 1;
  port = 0;
  private readonly sock: Socket = createSocket('udp4');

  async start(host = '127.0.0.1'): Promise<void> {
    this.sock.on('message', (msg, rinfo) => {
      const reply = this.answer(msg);
      if (reply) this.sock.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => this.sock.bind(0, host, resolve));
    this.port = this.sock.address().port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  set(name: string, ...ips: string[]): void {
    this.records.set(name.toLowerCase(), ips);
  }

  private answer(msg: Buffer): Buffer | undefined {
    if (msg.length < 12) return undefined;
    const id = msg.readUInt16BE(0);
    let p = 12;
    const labels: string[] = [];
    while (p < msg.length && msg[p] !== 0) {
      const l = msg[p] as number;
      labels.push(msg.subarray(p + 1, p + 1 + l).toString('latin1'));
      p += 1 + l;
    }
    const qEnd = p + 5; // zero label, qtype, qclass
    if (qEnd > msg.length) return undefined;
    const qtype = msg.readUInt16BE(p + 1);
    const name = labels.join('.').toLowerCase();
    this.queries.push(name);
    const question = msg.subarray(12, qEnd);
    const ips = this.records.get(name);
    const answers = qtype === 1 && ips ? ips : [];
    const header = Buffer.alloc(12);
    header.writeUInt16BE(id, 0);
    // QR, opcode 0, AA, RD copied; RA; RCODE 3 (NXDOMAIN) for unknown names.
    const rd = (msg.readUInt16BE(2) & 0x0100) !== 0 ? 0x0100 : 0;
    header.writeUInt16BE(0x8000 | 0x0400 | rd | 0x0080 | (ips ? 0 : 3), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    const rrs = answers.map((ip) => {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question
      rr.writeUInt16BE(1, 2); // A
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(this.ttl, 6);
      rr.writeUInt16BE(4, 10);
      ip.split('.').forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
      return rr;
    });
    return Buffer.concat([header, question, ...rrs]);
  }

  close(): void {
    this.sock.close();
  }
}
