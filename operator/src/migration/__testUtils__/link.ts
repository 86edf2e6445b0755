/* Moving bytes between two testbed hosts over their link: to measure it, and to copy an RDB file. */
import type { Testbed } from './Testbed';

const LINK_PORT = 7555;

const RECEIVER = `
const net = require('net'); const fs = require('fs');
const out = process.argv[1] === '-' ? null : fs.createWriteStream(process.argv[1]);
net.createServer(s => {
  let n = 0, t0;
  s.on('data', d => { t0 ??= process.hrtime.bigint(); n += d.length; if (out) out.write(d); });
  s.on('end', () => {
    const ns = process.hrtime.bigint() - (t0 ?? process.hrtime.bigint());
    const done = () => { process.stdout.write(JSON.stringify({ bytes: n, ns: String(ns) }) + '\\n'); process.exit(0); };
    out ? out.end(done) : done();
  });
}).listen(${LINK_PORT}, '0.0.0.0', () => process.stdout.write('ready\\n'));`;

const SENDER = `
const net = require('net'); const fs = require('fs');
const [host, what] = process.argv.slice(1);
const s = net.connect(${LINK_PORT}, host, () => {
  if (/^\\d+$/.test(what)) {
    const chunk = Buffer.alloc(4 << 20, 7); let left = Number(what);
    const pump = () => { while (left > 0) { left -= chunk.length; if (!s.write(chunk)) return s.once('drain', pump); } s.end(); };
    pump();
  } else { fs.createReadStream(what).pipe(s); }
});
s.on('close', () => process.exit(0));`;

/** Result of one transfer as the receiving side timed it. */
export interface LinkTransfer {
  bytes: number;
  ms: number;
}

/**
 * Sends `what` (a byte count of filler, or a file path) from one host to a file
 * (or nowhere, with '-') on another, over TCP across the testbed's link.
 */
export async function sendOverLink(
  bed: Testbed,
  fromHost: string,
  toHost: string,
  what: number | string,
  destination = '-',
): Promise<LinkTransfer> {
  const receiver = bed.spawnService(toHost, process.execPath, ['-e', RECEIVER, destination]);
  let output = '';
  const result = new Promise<LinkTransfer>((resolve, reject) => {
    receiver.stdout!.on('data', chunk => {
      output += chunk;
      const line = output.split('\n').find(l => l.startsWith('{'));
      if (line) {
        const parsed = JSON.parse(line);
        resolve({ bytes: parsed.bytes, ms: Number(BigInt(parsed.ns)) / 1e6 });
      }
    });
    receiver.on('exit', code => {
      if (!output.includes('{')) reject(new Error(`link receiver exited (${code}): ${output}`));
    });
  });
  await new Promise<void>(resolve => {
    const check = () => (output.includes('ready') ? resolve() : setTimeout(check, 10));
    check();
  });
  const sender = bed.spawnService(fromHost, process.execPath, ['-e', SENDER, bed.host(toHost).address, String(what)]);
  await new Promise(resolve => sender.on('exit', resolve));
  return result;
}

/** Bytes per second the link carries, measured with `bytes` of filler. */
export async function measureLink(bed: Testbed, fromHost: string, toHost: string, bytes: number): Promise<number> {
  const { bytes: got, ms } = await sendOverLink(bed, fromHost, toHost, bytes);
  return got / (ms / 1000);
}
