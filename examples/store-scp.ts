/**
 * A minimal Storage SCP written with the library API: accepts every storage SOP class in every
 * transfer syntax it can keep as received, and writes each object into a folder as a Part-10
 * file (our file meta, then the data set bytes exactly as they arrived). The data set streams
 * from the socket to the file: an object of any size is received with bounded memory.
 *
 *   npm run build && node dist/examples/store-scp.js [PORT] [FOLDER] [AE_TITLE]
 *
 * PORT 0 picks a free port; the line "listening as AE on port N" says which. `pacs server` is the
 * full archive (index, durability, duplicate policy); this shows how a C-STORE handler is written.
 */

import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  ApplicationEntity,
  allStorageSopClasses,
  type DimseService,
  encodeFileMeta,
  Status,
  storageTransferSyntaxes,
} from '../src/index.js';

const port = Number(process.argv[2] ?? 11114);
const folder = process.argv[3] ?? 'received';
const aeTitle = process.argv[4] ?? 'STORE-SCP';
await mkdir(folder, { recursive: true });

let received = 0;
const storeToFolder: DimseService = {
  name: 'store-to-folder',
  sopClasses: allStorageSopClasses().map((uid) => ({ uid })),
  transferSyntaxes: storageTransferSyntaxes(),
  handlers: {
    'C-STORE': async (ctx, data) => {
      const { affectedSopClassUid = '', affectedSopInstanceUid = '' } = ctx.command;
      // File names come from a counter: a UID sent by a peer is never used as a path.
      const name = `${String(++received).padStart(6, '0')}.dcm`;
      const partial = join(folder, `.${name}.part`);
      const meta = encodeFileMeta({
        mediaStorageSopClassUid: affectedSopClassUid,
        mediaStorageSopInstanceUid: affectedSopInstanceUid,
        transferSyntaxUid: ctx.transferSyntax,
        sourceApplicationEntityTitle: ctx.peerAeTitle,
      });
      try {
        // pipeline() honours backpressure: the association stops reading while the disk is behind.
        await pipeline(async function* () {
          yield meta;
          yield* data;
        }, createWriteStream(partial));
        await rename(partial, join(folder, name));
      } catch (e) {
        // The association ended mid-transfer: keep nothing.
        await rm(partial, { force: true });
        throw e;
      }
      console.log(
        `store-scp: ${name} ${affectedSopInstanceUid} from ${ctx.peerAeTitle} (${ctx.transferSyntax})`,
      );
      return { status: Status.Success };
    },
  },
};

const ae = new ApplicationEntity({ aeTitle }).addService(storeToFolder);
const server = await ae.listen({ port });
console.log(`store-scp: listening as ${aeTitle} on port ${server.address?.port}, writing to ${folder}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.close(5000).then(() => console.log('store-scp: stopped'));
  });
}
