/**
 * The JPEG and PNG encoding of rendered images (web/render/encode.ts, through sharp), decoded by
 * other real decoders: libjpeg-turbo's djpeg (Debian libjpeg-turbo-progs, installed with apt-get when missing
 * and we are root) and pngjs. JPEG output must be close to its input (PSNR), PNG exact.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import type { Image } from '../../src/dicom/pixel/render.js';
import { encodeJpeg, encodePng } from '../../src/web/render/encode.js';
import { djpeg, ensureDjpeg } from '../dicom/jpeg-decode.js';

function psnr(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let se = 0;
  for (let i = 0; i < a.length; i++) se += ((a[i] as number) - (b[i] as number)) ** 2;
  const mse = se / a.length;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse);
}

/** A smooth test picture with an edge: odd sizes test the MCU padding. */
function picture(width: number, height: number, channels: 1 | 3): Image {
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) {
        const r = Math.hypot(x - width / 2, y - height / 2);
        const v =
          128 + 100 * Math.sin(r / (6 + 3 * c)) * Math.cos((x + c * 7) / 17) + (x > width * 0.7 ? 20 : 0);
        data[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
  return { width, height, channels, data };
}

describe('rendered JPEG', () => {
  before(ensureDjpeg);

  for (const [name, img] of [
    ['grey 61x43', picture(61, 43, 1)],
    ['RGB 77x50', picture(77, 50, 3)],
    ['grey 512x512', picture(512, 512, 1)],
  ] as const) {
    test(`${name} decodes with djpeg, PSNR > 35 dB at quality 90`, async () => {
      const jpeg = await encodeJpeg(img, { quality: 90 });
      assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8]);
      assert.deepEqual([...jpeg.subarray(-2)], [0xff, 0xd9]);
      // Sequential (SOF0), never progressive: every viewer and browser decodes it as it arrives.
      assert.ok(Buffer.from(jpeg).includes(Buffer.from([0xff, 0xc0])), 'an SOF0 marker');
      assert.ok(!Buffer.from(jpeg).includes(Buffer.from([0xff, 0xc2])), 'no SOF2 marker');
      const back = djpeg(jpeg);
      assert.equal(back.width, img.width);
      assert.equal(back.height, img.height);
      assert.equal(back.channels, img.channels);
      const p = psnr(img.data, back.data);
      assert.ok(p > 35, `PSNR ${p.toFixed(1)} dB`);
    });
  }

  test('4:4:4 is closer than 4:2:0 on colour; lower quality means smaller files and lower PSNR', async () => {
    const img = picture(64, 64, 3);
    const p420 = psnr(img.data, djpeg(await encodeJpeg(img, { quality: 95 })).data);
    const p444 = psnr(img.data, djpeg(await encodeJpeg(img, { quality: 95, subsampling: '444' })).data);
    assert.ok(p444 > p420, `${p444} > ${p420}`);
    const grey = picture(128, 128, 1);
    const q20 = await encodeJpeg(grey, { quality: 20 });
    const q95 = await encodeJpeg(grey, { quality: 95 });
    assert.ok(q20.length < q95.length);
    assert.ok(psnr(grey.data, djpeg(q20).data) < psnr(grey.data, djpeg(q95).data));
    assert.ok(psnr(grey.data, djpeg(q20).data) > 25);
  });

  test('flat, extreme and 1x1 images (0xFF bytes are stuffed)', async () => {
    for (const v of [0, 255]) {
      const img: Image = { width: 17, height: 9, channels: 1, data: new Uint8Array(17 * 9).fill(v) };
      const back = djpeg(await encodeJpeg(img, { quality: 100 }));
      assert.ok(back.data.every((b) => Math.abs(b - v) <= 1));
    }
    const noise: Image = {
      width: 40,
      height: 40,
      channels: 3,
      data: Uint8Array.from({ length: 4800 }, (_, i) => (i * 7919) % 256),
    };
    assert.equal(djpeg(await encodeJpeg(noise, { quality: 100 })).data.length, 4800);
    const one: Image = { width: 1, height: 1, channels: 3, data: new Uint8Array([200, 30, 90]) };
    const back = djpeg(await encodeJpeg(one, { quality: 100, subsampling: '444' }));
    assert.ok(psnr(one.data, back.data) > 30);
  });
});

describe('rendered PNG', () => {
  test('grey and RGB decode with pngjs to the exact pixels', async () => {
    for (const img of [picture(61, 43, 1), picture(77, 50, 3), picture(1, 1, 3)]) {
      const png = PNG.sync.read(Buffer.from(await encodePng(img)));
      assert.equal(png.width, img.width);
      assert.equal(png.height, img.height);
      for (let i = 0; i < img.width * img.height; i++)
        for (let c = 0; c < 3; c++)
          assert.equal(png.data[i * 4 + c], img.data[i * img.channels + (img.channels === 1 ? 0 : c)]);
    }
  });
});
