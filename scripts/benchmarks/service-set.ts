// The synthetic Services of the services benchmark (pure): what the probe writes to the registry and what the
// hand-built kube-proxy layout is made of, the same set for both.

export interface BenchService {
  readonly name: string;
  readonly clusterIP: number;
  readonly port: number;
  readonly targetPort: number;
  readonly endpoints: readonly number[];
}

const ip4 = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

/**
 * `count` Services from cluster IP `first` on (skipping `skip`, the DNS address), each on its own port with
 * `perService` endpoints of its own (as pods are) in 172.30.128.0/17: addresses of the pod network the lab's nodes do
 * not lease (they take subnets among the first 100), so never reached.
 */
export function syntheticServices(count: number, first: number, perService: number, skip: number): BenchService[] {
  const services: BenchService[] = [];
  for (let i = 0, ip = first; i < count; i++, ip++) {
    if (ip === skip) ip++;
    services.push({
      name: `svc-${i}`,
      clusterIP: ip,
      port: 8000 + (i % 1000),
      targetPort: 80,
      endpoints: Array.from({ length: perService }, (_, e) => {
        const n = i * perService + e;
        return ip4(172, 30, 128 + Math.floor(n / 250), 1 + (n % 250));
      }),
    });
  }
  return services;
}
