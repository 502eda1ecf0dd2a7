/**
 * The TLS policy of every TLS endpoint (DICOM listener and requestors, HTTPS): PS3.15 B.12 (BCP 195
 * TLS Secure Transport Connection Profile), i.e. RFC 8996 (no TLS 1.0 or 1.1) and RFC 9325 4.2:
 * TLS 1.2 at least, TLS 1.3 preferred (the highest common version is negotiated); for TLS 1.2 only
 * AEAD suites with ephemeral elliptic-curve key exchange (ECDHE with AES-GCM or ChaCha20-Poly1305):
 * no CBC, no RSA key transport, no finite-field DHE, no SHA-1 MACs. TLS 1.3 suites are all AEAD.
 */

/** TLS 1.2 suites, strongest first within each key type (RFC 9325 4.2 recommends the first four). */
export const TLS12_CIPHERS: readonly string[] = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];

/** TLS 1.3 suites (RFC 8446 9.1: AES-128-GCM is mandatory). */
export const TLS13_CIPHERS: readonly string[] = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
];

/** Versions, ciphers and curves as node:tls takes them (network/transport.ts TlsParameters). */
export interface TlsPolicy {
  readonly minVersion: 'TLSv1.2';
  readonly maxVersion: 'TLSv1.3';
  readonly ciphers: string;
  readonly ecdhCurve: string;
  readonly honorCipherOrder: boolean;
}

export const TLS_POLICY: TlsPolicy = {
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  ciphers: [...TLS13_CIPHERS, ...TLS12_CIPHERS].join(':'),
  // RFC 8422 / RFC 9325 4.2.1: X25519 and the NIST curves of 256 and 384 bits.
  ecdhCurve: 'X25519:P-256:P-384',
  honorCipherOrder: true,
};
