/** What the NATS stores share: reading JetStream's error codes, and creating a stream once. */
import { JetStreamApiError, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";

/** JetStream's "wrong last sequence": a compare-and-set lost to another writer. */
const WRONG_LAST_SEQUENCE = 10071;
const STREAM_NOT_FOUND = 10059;

export function isConflict(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE;
}

/** Creates the stream unless it exists; safe when processes race to create it. */
export async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
  } catch (error) {
    if (!(error instanceof JetStreamApiError) || error.code !== STREAM_NOT_FOUND) throw error;
    await jsm.streams.add(config).catch(async (raced: unknown) => {
      // Another process created it first.
      if (!(raced instanceof JetStreamApiError)) throw raced;
      await jsm.streams.info(config.name);
    });
  }
}
