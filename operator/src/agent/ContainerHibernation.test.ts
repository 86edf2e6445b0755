import { outboundConnections } from './ContainerHibernation';

/** An address as /proc/net/tcp writes it: the IPv4 bytes in host (little-endian) order, then the port, in hex. */
function v4(address: string, port: number): string {
  const hex = address
    .split('.')
    .map(b => Number(b).toString(16).padStart(2, '0'))
    .reverse()
    .join('')
    .toUpperCase();
  return `${hex}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

function row(local: string, remote: string, state: string): string {
  return `   0: ${local} ${remote} ${state} 00000000:00000000 00:00000000 00000000   999        0 12345 1 0000000000000000 20 4 30 10 -1`;
}

const HEADER =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';

describe('the connections that keep an idle container awake', () => {
  it('names a connection the container opened to another service', () => {
    const table = [
      HEADER,
      // Listening on its port, and a client connected to it.
      row(v4('0.0.0.0', 6379), v4('0.0.0.0', 0), '0A'),
      row(v4('10.244.1.5', 6379), v4('10.244.2.7', 51000), '01'),
      // Its own link to a primary elsewhere.
      row(v4('10.244.1.5', 43210), v4('10.96.0.10', 6379), '01'),
    ].join('\n');
    expect(outboundConnections(table, [6379])).toEqual(['10.96.0.10:6379']);
  });

  it('leaves out its clients, the pod itself, and connections that are closing', () => {
    const table = [
      HEADER,
      row(v4('10.244.1.5', 6379), v4('10.244.2.7', 51000), '01'),
      row(v4('127.0.0.1', 40000), v4('127.0.0.1', 6379), '01'),
      // TIME_WAIT of a connection it had.
      row(v4('10.244.1.5', 43210), v4('10.96.0.10', 5432), '06'),
    ].join('\n');
    expect(outboundConnections(table, [6379])).toEqual([]);
  });

  it('reads IPv6 tables, with IPv4-mapped addresses as IPv4', () => {
    const table = [
      HEADER,
      // ::ffff:10.96.0.10 port 5432, from ::ffff:10.244.1.5 port 40001.
      row(
        '0000000000000000FFFF00000501F40A:9C41',
        '0000000000000000FFFF00000A00600A:1538',
        '01',
      ),
      // fd00::1 port 443.
      row(
        '000000FD000000000000000002000000:9C42',
        '000000FD000000000000000001000000:01BB',
        '01',
      ),
    ].join('\n');
    expect(outboundConnections(table, [6379])).toEqual([
      '10.96.0.10:5432',
      '[fd00:0:0:0:0:0:0:1]:443',
    ]);
  });
});
