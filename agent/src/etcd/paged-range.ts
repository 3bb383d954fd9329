// Listing a prefix page by page, all pages at the revision of the first, so the result is one consistent snapshot.
// One response holding everything would exceed gRPC's message limit long before etcd's own limits: 10,000 Services
// with their endpoints are ~7 MiB. Pages of PAGE_KEYS keys (each a round trip: 250 keys per page made listing those
// 30,000 keys 2.3 s, 5,000 1.1–1.4 s); a page too large for the client's receive limit is asked for again in halves.
// `skip` leaves sub-prefixes out (the agent has no use for the cluster IP allocation keys, a third of the registry).
import { GRPCResourceExhastedError, Range, type Etcd3, type IKeyValue, type IResponseHeader } from "etcd3";

export const PAGE_KEYS = 5000;

/** The key ranges of `prefix` without the `skip` sub-prefixes, in key order: [start, end) each. */
export function rangesWithout(prefix: string, skip: readonly string[]): Range[] {
  const end = Range.prefix(prefix).end;
  const ranges: Range[] = [];
  let start: Buffer = Buffer.from(prefix, "utf8");
  for (const sub of [...skip].filter((s) => s.startsWith(prefix) && s !== prefix).sort()) {
    const from = Buffer.from(sub, "utf8");
    if (Buffer.compare(from, start) > 0) ranges.push(new Range(start, from));
    const after = Range.prefix(sub).end;
    if (Buffer.compare(after, start) > 0) start = after;
  }
  if (Buffer.compare(end, start) > 0) ranges.push(new Range(start, end));
  return ranges;
}

export async function rangePaged(
  client: Etcd3,
  prefix: string,
  options: { serializable?: boolean; pageKeys?: number; skip?: readonly string[] } = {},
): Promise<{ kvs: IKeyValue[]; header: IResponseHeader }> {
  let pageKeys = options.pageKeys ?? PAGE_KEYS;
  let header: IResponseHeader | undefined;
  const kvs: IKeyValue[] = [];
  for (const range of rangesWithout(prefix, options.skip ?? [])) {
    let start = range.start;
    for (;;) {
      let request = client
        .getAll()
        .inRange(new Range(start, range.end))
        .limit(pageKeys)
        .serializable(options.serializable ?? false);
      if (header !== undefined) request = request.revision(header.revision);
      let response;
      try {
        response = await request.exec();
      } catch (error) {
        if (!(error instanceof GRPCResourceExhastedError) || pageKeys === 1) throw error;
        pageKeys = Math.ceil(pageKeys / 2);
        continue;
      }
      header ??= response.header;
      kvs.push(...response.kvs);
      const last = response.kvs[response.kvs.length - 1];
      if (!response.more || last === undefined) break;
      // The next key after the last one: the same bytes with a zero byte appended.
      start = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }
  // No range at all (everything skipped): still a revision to watch from.
  header ??= (
    await client
      .getAll()
      .prefix(prefix)
      .limit(1)
      .serializable(options.serializable ?? false)
      .exec()
  ).header;
  return { kvs, header };
}
