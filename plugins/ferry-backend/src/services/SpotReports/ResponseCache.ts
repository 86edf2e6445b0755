import { createHash } from 'node:crypto';

/** A response body built once and sent as it is, with its entity tag. */
export interface CachedBody {
  body: Buffer;
  etag: string;
}

interface Entry {
  value: Promise<CachedBody | undefined>;
  generation: number;
  at: number;
  refreshing: boolean;
}

/** The most bodies kept; beyond it the cache starts over (they are cheap to rebuild). */
const MAX_ENTRIES = 10_000;

/**
 * Serialized answers of the read views, keyed by what they are about.
 *
 * An entry is rebuilt at once when this process wrote to the store since it was
 * built (`generation`), so a caller always sees its own writes; an entry older
 * than `maxAgeMs` is served once more while one rebuild runs, which bounds how
 * long another instance's writes stay unseen. Concurrent misses share one build.
 */
export class ResponseCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly generation: () => number,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(
    key: string,
    build: () => Promise<unknown | undefined>,
  ): Promise<CachedBody | undefined> {
    const entry = this.entries.get(key);
    const generation = this.generation();
    if (entry && entry.generation === generation) {
      if (this.now() - entry.at >= this.maxAgeMs && !entry.refreshing) {
        entry.refreshing = true;
        this.build(key, generation, build).catch(() => {
          entry.refreshing = false;
        });
      }
      return entry.value;
    }
    return this.build(key, generation, build);
  }

  private build(
    key: string,
    generation: number,
    build: () => Promise<unknown | undefined>,
  ): Promise<CachedBody | undefined> {
    const value = build().then(result => {
      if (result === undefined) return undefined;
      const body = Buffer.from(JSON.stringify(result), 'utf8');
      const etag = `W/"${createHash('sha1').update(body).digest('base64url')}"`;
      return { body, etag };
    });
    const entry: Entry = {
      value,
      generation,
      at: this.now(),
      refreshing: false,
    };
    const current = this.entries.get(key);
    if (!current || current.generation !== generation) this.set(key, entry);
    value.then(
      result => {
        if (result === undefined) {
          // Nothing to serve (e.g. no report yet): do not remember the miss.
          if (this.entries.get(key) === entry) this.entries.delete(key);
          return;
        }
        const latest = this.entries.get(key);
        if (!latest || latest.generation <= generation) this.set(key, entry);
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return value;
  }

  private set(key: string, entry: Entry) {
    if (this.entries.size >= MAX_ENTRIES && !this.entries.has(key))
      this.entries.clear();
    this.entries.set(key, entry);
  }
}
